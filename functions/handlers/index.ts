/**
 * The Lambda entry point. One function, four ways in, one use case:
 * 1. HTTP API 2.0 `POST /send` (IAM-authenticated) — JSON, one message or a batch;
 * 2. HTTP API 2.0 `POST|OPTIONS /forms/{formId}` (public) — urlencoded, multipart or JSON form posts;
 * 3. EventBridge `detail-type: "Send Email"`;
 * 4. direct invoke with the `/send` shape;
 * 5. SQS records from the dead-letter queue (redrive of failed asynchronous invocations, `sqs.ts`).
 * Module scope (configuration, secret cache, warm SMTP session) survives between invocations of a warm instance.
 * The handler itself is `create-handler.ts`; this module builds the instance's one, in two steps: this small module
 * starts the TCP connection to the configured SMTP server (`connect-ahead.ts`), and only then loads the rest of the
 * code (`import()`, awaited at the top level: part of init), so the connect overlaps the loading.
 */
import { openSmtpAhead } from './connect-ahead.ts';

const opening = openSmtpAhead(process.env);
const instance = await import('./instance.ts');
const started = instance.startInstance(opening);

export type { LambdaFunction, LambdaHandler } from './create-handler.ts';
export const createHandler = instance.createHandler;
/** The function instance's runtime (module scope = one per Lambda execution environment). */
export const instanceRuntime = started.runtime;
/** The function instance's handler. */
export const handler = started.handler;
