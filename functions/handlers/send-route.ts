/** `POST /send` (IAM-authenticated in the deployed stack): one message or a batch as JSON. */
import * as v from 'valibot';
import { deadlineFrom } from '../send/deliver.ts';
import { validationFailed } from '../send/errors.ts';
import { deliverOnce, type RequestKey } from '../send/idempotency.ts';
import type { DeliveryMode } from '../send/queue.ts';
import { IdempotencyKeySchema } from '../send/request.ts';
import { countStatuses } from './async-policy.ts';
import { answeredResults, HttpError } from './failure.ts';
import { type HttpRequest, type HttpResult, json, parseJsonBody, REPLAYED_HEADER } from './http.ts';
import type { Answered, Invocation, InvocationOutcome } from './log.ts';

export async function handleSend(request: HttpRequest, inv: Invocation): Promise<Answered<HttpResult>> {
  const { rt } = inv;
  const type = request.mediaType;
  if (type !== 'application/json' && !type.endsWith('+json')) {
    throw new HttpError('unsupported_media_type', 'POST /send takes application/json', {
      errors: [{ field: 'content-type', code: 'unsupported', message: 'use application/json' }],
    });
  }
  const key = idempotencyKey(request.headers['idempotency-key']);
  const input = parseJsonBody(request.body.text(rt.limits.maxRequestBytes));
  const async = rt.queue !== undefined && prefersAsync(request.headers.prefer);
  const mode: DeliveryMode = async ? 'queue' : rt.delivery.send;
  const out = await deliverOnce(input, rt.deps, rt.idempotency, {
    deadline: deadlineFrom(inv.remainingMs()),
    trace: inv.trace,
    mode,
    syncBudgetMs: rt.delivery.syncBudgetMs,
    origin: 'http_send',
    ...(key ? { key } : {}),
  });
  const headers: Record<string, string> = async ? { 'preference-applied': 'respond-async' } : {};
  const replayed: InvocationOutcome = out.replayed ? { replayed: true } : {};
  if (out.replayed) headers[REPLAYED_HEADER] = 'true';
  if (out.kind === 'single') {
    const status = out.status === 'sent' ? 200 : 202;
    const { kind: _, replayed: __, ...answer } = out;
    return {
      response: json(status, answer, headers),
      outcome: { ...replayed, outcome: out.status === 'sent' ? 'sent' : 'queued', status, messages: 1 },
    };
  }
  const statuses = new Set(out.results.map((r) => r.status));
  const delivered = out.results.every((r) => r.status === 'accepted' || r.status === 'queued');
  const outcome: InvocationOutcome = {
    ...replayed,
    messages: out.results.length,
    counts: countStatuses(out.results),
    outcome: !delivered
      ? statuses.has('accepted') || statuses.has('queued')
        ? 'partial'
        : 'rejected'
      : statuses.has('queued')
        ? 'queued'
        : 'sent',
    status: !delivered ? 207 : statuses.has('accepted') ? 200 : 202,
  };
  return { response: json(outcome.status!, { results: answeredResults(out.results) }, headers), outcome };
}

/** The `Idempotency-Key` header (1–256 printable ASCII), if sent. */
function idempotencyKey(raw: string | undefined): RequestKey | undefined {
  if (raw === undefined) return undefined;
  const parsed = v.safeParse(IdempotencyKeySchema, raw.trim());
  if (!parsed.success) {
    throw validationFailed([
      { field: 'idempotency-key', code: 'invalid', message: parsed.issues[0].message },
    ]);
  }
  return { scope: 'send', value: parsed.output };
}

/** RFC 7240 `Prefer: respond-async` (among other preferences, case-insensitive). */
export function prefersAsync(prefer: string | undefined): boolean {
  if (!prefer) return false;
  return prefer
    .slice(0, 1000)
    .split(',')
    .some((p) => p.split(';')[0]!.trim().toLowerCase() === 'respond-async');
}
