/** `POST /send` (IAM-authenticated in the deployed stack): one message or a batch as JSON. */
import * as v from 'valibot';
import { deadlineFrom } from '../send/deliver.ts';
import { SendError, validationFailed } from '../send/errors.ts';
import { deliverOnce, type RequestKey } from '../send/idempotency.ts';
import { IdempotencyKeySchema } from '../send/request.ts';
import {
  bodyText,
  type HttpEvent,
  type HttpResult,
  header,
  json,
  mediaType,
  parseJsonBody,
  REPLAYED_HEADER,
} from './http.ts';
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
  const key = idempotencyKey(event);
  const input = parseJsonBody(bodyText(event, rt.limits.maxRequestBytes));
  const out = await deliverOnce(input, rt.deps, rt.idempotency, {
    deadline: deadlineFrom(remainingMs),
    trace: log.trace,
    origin: 'http_send',
    ...(key ? { key } : {}),
  });
  const headers: Record<string, string> = out.replayed ? { [REPLAYED_HEADER]: 'true' } : {};
  if (out.replayed) log.replayed = true;
  if (out.kind === 'single') {
    log.outcome = 'sent';
    log.status = 200;
    log.messages = 1;
    return json(200, { messageId: out.messageId, accepted: out.accepted, rejected: out.rejected }, headers);
  }
  const allAccepted = out.results.every((r) => r.status === 'accepted');
  log.messages = out.results.length;
  log.outcome = allAccepted
    ? 'sent'
    : out.results.some((r) => r.status === 'accepted')
      ? 'partial'
      : 'rejected';
  log.status = allAccepted ? 200 : 207;
  return json(log.status, { results: out.results }, headers);
}

/** The `Idempotency-Key` header (1–256 printable ASCII), if sent. */
function idempotencyKey(event: HttpEvent): RequestKey | undefined {
  const raw = header(event, 'idempotency-key');
  if (raw === undefined) return undefined;
  const parsed = v.safeParse(IdempotencyKeySchema, raw.trim());
  if (!parsed.success) {
    throw validationFailed([
      { field: 'idempotency-key', code: 'invalid', message: parsed.issues[0].message },
    ]);
  }
  return { scope: 'send', value: parsed.output };
}
