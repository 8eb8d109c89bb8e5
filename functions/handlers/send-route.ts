/** `POST /send` (IAM-authenticated in the deployed stack): one message or a batch as JSON. */
import { deadlineFrom, deliverRequest } from '../send/deliver.ts';
import { SendError } from '../send/errors.ts';
import { bodyText, type HttpEvent, type HttpResult, json, mediaType, parseJsonBody } from './http.ts';
import type { InvocationLog } from './log.ts';
import type { Runtime } from './runtime.ts';

export async function handleSend(
  event: HttpEvent,
  remainingMs: number,
  rt: Runtime,
  log: InvocationLog,
): Promise<HttpResult> {
  const type = mediaType(event);
  if (type !== 'application/json' && !type.endsWith('+json')) {
    throw new SendError('unsupported_media_type', 'POST /send takes application/json', {
      errors: [{ field: 'content-type', code: 'unsupported', message: 'use application/json' }],
    });
  }
  const input = parseJsonBody(bodyText(event, rt.limits.maxRequestBytes));
  const out = await deliverRequest(input, rt.deps, { deadline: deadlineFrom(remainingMs), trace: log.trace });
  if (out.kind === 'single') {
    log.outcome = 'sent';
    log.status = 200;
    log.messages = 1;
    return json(200, { messageId: out.messageId, accepted: out.accepted, rejected: out.rejected });
  }
  const allAccepted = out.results.every((r) => r.status === 'accepted');
  log.messages = out.results.length;
  log.outcome = allAccepted
    ? 'sent'
    : out.results.some((r) => r.status === 'accepted')
      ? 'partial'
      : 'rejected';
  log.status = allAccepted ? 200 : 207;
  return json(log.status, { results: out.results });
}
