/**
 * Runs a deployed Lambda zip's handler the way the Node.js runtime does, in this (child) process: the working
 * directory is the unpacked task root, the environment is the function's, `_HANDLER` names `file.export`. It
 * takes invocations over IPC ({ id, event, timeoutMs, invokedFunctionArn }) and answers { id, result } or, for a thrown error,
 * { id, error: { errorType, errorMessage } } (the runtime's error shape). Plain JavaScript: it runs on whatever
 * Node binary the test starts it with (the suite's Node 20, and Node 24 = Lambda's nodejs24.x).
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
const [file, exportName] = (process.env._HANDLER ?? 'index.handler').split('.');
// the runtime's resolution order for the handler file
const found = ['.mjs', '.js', '.cjs'].map((ext) => join(root, `${file}${ext}`)).find((p) => existsSync(p));
if (!found) throw new Error(`no ${file}.mjs/.js/.cjs in ${root}`);
const mod = await import(pathToFileURL(found).href);
const handler = mod[exportName];
if (typeof handler !== 'function') throw new Error(`${found} does not export ${exportName}`);

function context(timeoutMs, invokedFunctionArn) {
  const deadline = Date.now() + timeoutMs;
  const awsRequestId = randomUUID();
  const name = process.env.AWS_LAMBDA_FUNCTION_NAME;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

process.on('message', async ({ id, event, timeoutMs, invokedFunctionArn }) => {
  try {
    const result = await handler(event, context(timeoutMs, invokedFunctionArn));
    process.send({ id, result: result === undefined ? null : result });
  } catch (err) {
    process.send({
      id,
      error: { errorType: err?.name ?? 'Error', errorMessage: String(err?.message ?? err) },
    });
  }
});
process.send({ ready: true, node: process.version });
