/**
 * The Lambda entry point. One function, four ways in, one use case:
 * 1. HTTP API 2.0 `POST /send` (IAM-authenticated) — JSON, one message or a batch;
 * 2. HTTP API 2.0 `POST|OPTIONS /forms/{formId}` (public) — urlencoded, multipart or JSON form posts;
 * 3. EventBridge `detail-type: "Send Email"`;
 * 4. direct invoke with the `/send` shape;
 * 5. SQS records from the dead-letter queue (redrive of failed asynchronous invocations, `sqs.ts`).
 * Module scope (configuration, secret cache, warm SMTP session) survives between invocations of a warm instance.
 * The handler itself is `create-handler.ts`; this module only builds the instance's one.
 */
// First, and on its own: creates the instance's runtime and starts its network work (secret fetch, SMTP
// connection) before the modules below are evaluated. A bare import keeps its place when imports are sorted.
import './instance.ts';
import { createHandler, type LambdaHandler } from './create-handler.ts';
import { instanceRuntime } from './instance.ts';

export { createHandler, type LambdaFunction, type LambdaHandler } from './create-handler.ts';

/** The function instance's handler (module scope = one per Lambda execution environment). */
export const handler: LambdaHandler = createHandler({ runtime: instanceRuntime });
