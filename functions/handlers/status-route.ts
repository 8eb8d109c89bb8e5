/** `GET /messages/{messageId}` (IAM-authenticated in the deployed stack, like `/send`): a message's status. */
import { messageStatus } from '../send/status.ts';
import { type HttpRequest, type HttpResult, json } from './http.ts';
import type { Answered } from './log.ts';
import type { Runtime } from './runtime.ts';

export async function handleStatus(
  request: HttpRequest,
  id: string,
  rt: Runtime,
): Promise<Answered<HttpResult>> {
  // IAM-authenticated (SigV4) callers see full addresses; anything else sees domains only.
  const status = await messageStatus(rt.idempotency, id, { full: request.iamCaller });
  return { response: json(200, status), outcome: { outcome: 'status', status: 200 } };
}
