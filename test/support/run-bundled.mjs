// Runs the BUNDLED handler once in this (child) process, for crash tests: `node run-bundled.mjs <bundle.mjs>`.
// The event is the JSON in $EVENT; the Lambda context's deadline is $DEADLINE_MS (epoch ms, fixed by the parent
// when it starts the child, as Lambda fixes it when the invocation starts) and its request id $REQUEST_ID (Lambda
// keeps it on its retries of an asynchronous invoke). Prints one line `{"result":…}` or `{"error":…}`.
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const { handler } = await import(pathToFileURL(process.argv[2]).href);
const deadline = Number(process.env.DEADLINE_MS);
if (!Number.isFinite(deadline)) throw new Error('DEADLINE_MS is not set');
const awsRequestId = process.env.REQUEST_ID || randomUUID();
const context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'smtp-send-crash-test',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:smtp-send-crash-test',
  memoryLimitInMB: '512',
  awsRequestId,
  logGroupName: '/aws/lambda/smtp-send-crash-test',
  logStreamName: 'local/crash',
  getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
};
let line;
try {
  line = JSON.stringify({ result: await handler(JSON.parse(process.env.EVENT), context) });
} catch (e) {
  line = JSON.stringify({ error: { name: e?.name, message: e?.message } });
}
await handler.close();
process.stdout.write(`${line}\n`);
