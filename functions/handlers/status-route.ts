/** `GET /messages/{messageId}` (IAM-authenticated in the deployed stack, like `/send`): a message's status. */
import { messageStatus } from '../send/status.ts';
import { type HttpEvent, type HttpResult, json } from './http.ts';
import type { InvocationLog } from './log.ts';
import type { Runtime } from './runtime.ts';

export async function handleStatus(
  event: HttpEvent,
  rawId: string,
  rt: Runtime,
  log: InvocationLog,
): Promise<HttpResult> {
  let id: string;
  try {
    id = event.pathParameters?.messageId ?? decodeURIComponent(rawId);
  } catch {
    id = rawId;
  }
  // IAM-authenticated (SigV4) callers see full addresses; anything else sees domains only.
  const full = !!(event.requestContext as { authorizer?: { iam?: unknown } }).authorizer?.iam;
  const status = await messageStatus(rt.idempotency, id, { full });
  log.outcome = 'status';
  log.status = 200;
  return json(200, status);
}
