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
 *
 * Direct invoke applies the same policy (`deliverUnderAsyncPolicy`, below): Lambda cannot tell it whether it was
 * invoked synchronously or with `--invocation-type Event`, so it must throw for the asynchronous case too.
 */
import type { EventBridgeEvent } from 'aws-lambda';
import { deadlineFrom, deliverRequest } from '../send/deliver.ts';
import { type ErrorCode, SendError, type SendErrorBody } from '../send/errors.ts';
import type { BatchItemOutcome } from '../send/types.ts';
import { SEND_EMAIL_DETAIL_TYPE } from './detail-type.ts';
import { type InvocationLog, noteError } from './log.ts';
import { type Runtime, requireConfig } from './runtime.ts';

export { SEND_EMAIL_DETAIL_TYPE };

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
    readonly code: FailureCode,
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
  return deliverUnderAsyncPolicy(
    event.detail,
    remainingMs,
    rt,
    log,
    (p) =>
      new EventDeliveryError(
        p.code,
        p.transient,
        p.detail,
        p.errors ?? p.results?.map((r) => ({ index: r.index, status: r.status, code: r.error.code })),
      ),
    { eventId: event.id },
  );
}

/** The stable code of a failure thrown to Lambda: the use case's codes plus the entry points' own. */
export type FailureCode = ErrorCode | 'unsupported_event' | 'batch_failed';

/**
 * A failed invocation's problem: the use case's error body (`SendErrorBody`) plus whether the same request may
 * succeed later unchanged, and for `batch_failed` each message's failure.
 */
export interface InvocationProblem extends Omit<SendErrorBody, 'code'> {
  code: FailureCode;
  transient: boolean;
  /** `batch_failed`: the messages that were not sent (none was). */
  results?: NotSent[];
}

/** A batch message that was not sent: refused (`rejected`) or failed transiently (`not_sent`). */
export type NotSent = BatchItemOutcome & { status: 'rejected' | 'not_sent'; error: SendErrorBody };

export function problemOf(e: SendError): InvocationProblem {
  return { ...e.toJSON(), transient: e.transient };
}

/**
 * The asynchronous failure policy, shared by EventBridge and direct invoke (see the top of this file): deliver
 * the request; return the answer when something was (or may have been) delivered — `delivery_unknown`, a batch
 * partly delivered — and otherwise throw `fail(problem)`, so Lambda retries an asynchronous invocation and then
 * hands it to the on-failure destination. A thrown error that is not a `SendError` (a bug) is rethrown as is.
 * `logFields` are added to each `batch_partial_failure` line (e.g. the EventBridge event id).
 */
export async function deliverUnderAsyncPolicy(
  payload: unknown,
  remainingMs: number,
  rt: Runtime,
  log: InvocationLog,
  fail: (problem: InvocationProblem) => Error,
  logFields: Record<string, unknown> = {},
): Promise<unknown> {
  let out: Awaited<ReturnType<typeof deliverRequest>>;
  try {
    requireConfig(rt);
    out = await deliverRequest(payload, rt.deps, {
      deadline: deadlineFrom(remainingMs),
      trace: log.trace,
    });
  } catch (e) {
    if (!(e instanceof SendError)) throw e;
    noteError(log, e);
    // Not thrown: a retry could deliver the message twice. The summary line is logged at ERROR with this code.
    if (e.code === 'delivery_unknown') return { ok: false, error: e.toJSON() };
    log.outcome = e.transient ? 'failed' : 'rejected';
    throw fail(problemOf(e));
  }
  if (out.kind === 'single') {
    log.outcome = 'sent';
    log.messages = 1;
    return { ok: true, messageId: out.messageId, accepted: out.accepted, rejected: out.rejected };
  }
  log.messages = out.results.length;
  const failed = out.results.filter((r): r is NotSent => r.status === 'rejected' || r.status === 'not_sent');
  const delivered = out.results.filter((r) => r.status === 'accepted' || r.status === 'unknown');
  if (failed.length === 0) {
    if (delivered.some((r) => r.status === 'unknown')) {
      log.outcome = 'unknown';
      log.code = 'delivery_unknown';
    } else log.outcome = 'sent';
    return { ok: true, results: out.results };
  }
  if (delivered.length === 0) {
    // Nothing went out: a retry resends the whole batch, which is safe.
    throw fail(batchFailed(failed, log));
  }
  log.outcome = 'partial';
  log.code = 'batch_partial_failure';
  for (const r of failed) {
    rt.logger.error('batch message not delivered', {
      code: 'batch_partial_failure',
      entryPoint: log.entryPoint,
      ...logFields,
      index: r.index,
      status: r.status,
      errorCode: r.error.code,
      smtpCode: r.error.smtp?.code,
      fieldErrors: r.error.errors?.slice(0, 10).map((e) => `${e.field}:${e.code}`),
    });
  }
  return { ok: true, results: out.results };
}

/** `batch_failed`: transient when any message was `not_sent`; the status is the worst of the messages'. */
function batchFailed(failed: NotSent[], log: InvocationLog): InvocationProblem {
  const transient = failed.some((r) => r.status === 'not_sent');
  log.outcome = transient ? 'failed' : 'rejected';
  log.code = 'batch_failed';
  const retryAfter = Math.max(
    0,
    ...failed.map((r) => (r.status === 'not_sent' ? (r.error.retryAfter ?? 0) : 0)),
  );
  const problem: InvocationProblem = {
    code: 'batch_failed',
    status: Math.max(...failed.map((r) => r.error.status)),
    title: 'None of the messages in the batch was sent',
    detail: `none of the ${failed.length} messages was sent${transient ? '; a retry may succeed' : ''}`,
    transient,
    results: failed.map((r) => ({ index: r.index, status: r.status, error: r.error })),
  };
  if (transient) problem.retryAfter = retryAfter || 30;
  return problem;
}
