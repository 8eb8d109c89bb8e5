/**
 * Direct invoke (`aws lambda invoke`, Step Functions): the payload is the `/send` shape (or a batch).
 * Returns `{ ok: true, messageId, accepted, rejected }` / `{ ok: true, results }`, or a typed error object
 * `{ ok: false, error: { code, status, title, detail, errors?, smtp?, retryAfter? } }` — never throws for a
 * request problem, so Step Functions can branch on `$.error.code`.
 */
import { deadlineFrom, deliverRequest } from '../send/deliver.ts';
import { SendError } from '../send/errors.ts';
import { toSendError } from './http.ts';
import { type InvocationLog, noteError } from './log.ts';
import { type Runtime, requireConfig } from './runtime.ts';

export async function handleDirect(
  payload: unknown,
  remainingMs: number,
  rt: Runtime,
  log: InvocationLog,
): Promise<unknown> {
  try {
    requireConfig(rt);
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw new SendError('validation_failed', 'the payload must be a JSON object (the /send shape)', {
        errors: [{ field: 'payload', code: 'invalid_type', message: 'must be an object' }],
      });
    }
    const out = await deliverRequest(payload, rt.deps, {
      deadline: deadlineFrom(remainingMs),
      trace: log.trace,
    });
    if (out.kind === 'single') {
      log.outcome = 'sent';
      log.messages = 1;
      return { ok: true, messageId: out.messageId, accepted: out.accepted, rejected: out.rejected };
    }
    log.messages = out.results.length;
    const all = out.results.every((r) => r.status === 'accepted');
    log.outcome = all ? 'sent' : 'partial';
    return { ok: true, results: out.results };
  } catch (e) {
    const err = toSendError(e);
    if (err.code === 'internal_error') rt.logger.error('direct invoke failed', { error: e as Error });
    noteError(log, err);
    return { ok: false, error: err.toJSON() };
  }
}
