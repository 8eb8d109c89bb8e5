/**
 * EventBridge: `detail-type: "Send Email"`, `detail` = the `/send` shape (one message or a batch).
 *
 * Failure policy (Lambda invokes EventBridge targets asynchronously; only a THROWN error is retried and then
 * routed to the on-failure destination / DLQ):
 * - transient failures (`smtp_unavailable`, `captcha_unavailable`): throw `EventDeliveryError` → retried by
 *   Lambda, then the DLQ;
 * - permanent failures (`validation_failed`, `recipient_not_allowed`, `smtp_rejected`, `configuration_error`, an
 *   unknown detail-type...): ALSO throw, so the event lands in the DLQ with its reason instead of vanishing in a
 *   log line (the retries cost two cheap attempts; nothing was sent, so nothing is duplicated);
 * - `delivery_unknown`: do NOT throw (a retry could deliver twice); logged at ERROR with code
 *   `delivery_unknown` and the Message-ID, and returned;
 * - batches: thrown only when no message was accepted or unknown (a retry resends the whole batch); a partly
 *   delivered batch is returned and each failed message is logged at ERROR with `batch_partial_failure`.
 */
import type { EventBridgeEvent } from 'aws-lambda';
import { deadlineFrom, deliverRequest } from '../send/deliver.ts';
import { type ErrorCode, SendError } from '../send/errors.ts';
import { type InvocationLog, noteError } from './log.ts';
import { type Runtime, requireConfig } from './runtime.ts';

export const SEND_EMAIL_DETAIL_TYPE = 'Send Email';

export type SendEmailEvent = EventBridgeEvent<string, unknown>;

export function isEventBridgeEvent(event: unknown): event is SendEmailEvent {
  const e = event as Record<string, unknown> | null;
  return (
    !!e &&
    typeof e === 'object' &&
    typeof e['detail-type'] === 'string' &&
    typeof e.source === 'string' &&
    'detail' in e &&
    typeof e.id === 'string'
  );
}

/** Thrown to make Lambda retry the event and then route it to the on-failure destination. */
export class EventDeliveryError extends Error {
  override readonly name = 'EventDeliveryError';
  constructor(
    readonly code: ErrorCode | 'unsupported_event' | 'batch_failed',
    readonly transient: boolean,
    detail: string,
    readonly errors?: unknown,
  ) {
    super(`[${code}] ${detail}`);
  }
}

export async function handleEventBridge(
  event: SendEmailEvent,
  remainingMs: number,
  rt: Runtime,
  log: InvocationLog,
): Promise<unknown> {
  if (event['detail-type'] !== SEND_EMAIL_DETAIL_TYPE) {
    log.outcome = 'rejected';
    log.code = 'unsupported_event';
    throw new EventDeliveryError(
      'unsupported_event',
      false,
      `detail-type "${String(event['detail-type']).slice(0, 100)}" is not handled; expected "${SEND_EMAIL_DETAIL_TYPE}"`,
    );
  }
  let out: Awaited<ReturnType<typeof deliverRequest>>;
  try {
    requireConfig(rt);
    out = await deliverRequest(event.detail, rt.deps, {
      deadline: deadlineFrom(remainingMs),
      trace: log.trace,
    });
  } catch (e) {
    if (!(e instanceof SendError)) throw e;
    noteError(log, e);
    if (e.code === 'delivery_unknown') {
      return { ok: false, error: e.toJSON() };
    }
    log.outcome = e.transient ? 'failed' : 'rejected';
    throw new EventDeliveryError(e.code, e.transient, e.message, e.errors);
  }
  if (out.kind === 'single') {
    log.outcome = 'sent';
    log.messages = 1;
    return { ok: true, messageId: out.messageId, accepted: out.accepted, rejected: out.rejected };
  }
  log.messages = out.results.length;
  const failed = out.results.filter((r) => r.status === 'rejected' || r.status === 'not_sent');
  const delivered = out.results.filter((r) => r.status === 'accepted' || r.status === 'unknown');
  if (failed.length === 0) {
    log.outcome = out.results.some((r) => r.status === 'unknown') ? 'unknown' : 'sent';
    return { ok: true, results: out.results };
  }
  if (delivered.length === 0) {
    log.outcome = 'rejected';
    log.code = 'batch_failed';
    const transient = failed.some((r) => r.status === 'not_sent');
    throw new EventDeliveryError(
      'batch_failed',
      transient,
      `none of the ${failed.length} messages was sent`,
      failed.map((r) => ({
        index: r.index,
        status: r.status,
        code: 'error' in r ? r.error.code : undefined,
      })),
    );
  }
  log.outcome = 'partial';
  log.code = 'batch_partial_failure';
  for (const r of failed) {
    if (!('error' in r)) continue;
    rt.logger.error('batch message not delivered', {
      code: 'batch_partial_failure',
      eventId: event.id,
      index: r.index,
      status: r.status,
      errorCode: r.error.code,
      smtpCode: r.error.smtp?.code,
      fieldErrors: r.error.errors?.slice(0, 10).map((e) => `${e.field}:${e.code}`),
    });
  }
  return { ok: true, results: out.results };
}
