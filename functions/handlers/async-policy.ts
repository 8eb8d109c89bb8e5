/**
 * The asynchronous failure policy, in one place, for the entry points Lambda may invoke asynchronously
 * (EventBridge, direct invoke; the DLQ redrive re-runs them): only a THROWN error makes Lambda retry an
 * asynchronous invocation and then hand it to the on-failure destination (the dead-letter queue).
 * - nothing was sent (transient or permanent failure): throw → retried, then the DLQ (permanent failures too, so
 *   the request lands in the DLQ with its reason instead of vanishing in a log line);
 * - `delivery_unknown`: never thrown (a retry could deliver twice); returned, the summary line logged at ERROR;
 * - a batch: thrown only when no message was accepted or unknown (a retry resends the whole batch); a partly
 *   delivered batch is returned and each failed message logged at ERROR with `batch_partial_failure`.
 */
import { deadlineFrom } from '../send/deliver.ts';
import { SendError } from '../send/errors.ts';
import { type DeliveredAnswer, deliverOnce, type RequestKey } from '../send/idempotency.ts';
import type { BatchItemOutcome } from '../send/types.ts';
import { answered, answeredResults, type Failed, type Problem, statusOfCode, toProblem } from './failure.ts';
import { type InvocationLog, noteError } from './log.ts';
import { type Runtime, requireConfig } from './runtime.ts';

/**
 * A failed invocation's problem (failure.ts's `Problem`, with `transient` always set): whether the same request may
 * succeed later unchanged, and for `batch_failed` each message's failure.
 */
export type InvocationProblem = Problem & { transient: boolean };

export function invocationProblemOf(err: Failed): InvocationProblem {
  return { ...toProblem(err), transient: err.transient };
}

/** A batch message that was not sent: refused (`rejected`) or failed transiently (`not_sent`). */
type NotSent = Extract<BatchItemOutcome, { status: 'rejected' | 'not_sent' | 'unknown' }> & {
  status: 'rejected' | 'not_sent';
};

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
  key?: RequestKey,
): Promise<unknown> {
  let out: DeliveredAnswer;
  try {
    requireConfig(rt);
    out = await deliverOnce(payload, rt.deps, rt.idempotency, {
      requeuePartial: true,
      deadline: deadlineFrom(remainingMs),
      trace: log.trace,
      origin:
        log.entryPoint === 'eventbridge' || log.entryPoint === 'sqs_redrive'
          ? log.entryPoint
          : 'direct_invoke',
      ...(key ? { key } : {}),
    });
  } catch (e) {
    if (!(e instanceof SendError)) throw e;
    noteError(log, e);
    if (e.replayed) log.replayed = true;
    // Not thrown: a retry could deliver the message twice. The summary line is logged at ERROR with this code.
    if (e.code === 'delivery_unknown') return { ok: false, error: toProblem(e), ...replayed(e.replayed) };
    log.outcome = e.transient ? 'failed' : 'rejected';
    throw fail(invocationProblemOf(e));
  }
  if (out.replayed) log.replayed = true;
  if (out.kind === 'single') {
    log.messages = 1;
    const { kind: _, replayed: again, ...result } = out;
    log.outcome = result.status === 'sent' ? 'sent' : 'queued';
    return { ok: true, ...result, ...replayed(again) };
  }
  log.messages = out.results.length;
  const failed = out.results.filter((r): r is NotSent => r.status === 'rejected' || r.status === 'not_sent');
  const delivered = out.results.filter((r) => r.status !== 'rejected' && r.status !== 'not_sent');
  log.counts = countStatuses(out.results);
  // Each unknown message of a batch gets its own ERROR line with the code the unknown-delivery alarm counts.
  for (const r of out.results) {
    if (r.status !== 'unknown') continue;
    rt.logger.error('batch message delivery unknown', {
      code: 'delivery_unknown',
      entryPoint: log.entryPoint,
      ...logFields,
      index: r.index,
      messageId: r.messageId,
      smtpCode: r.error.smtp?.code,
    });
  }
  if (failed.length === 0) {
    if (delivered.some((r) => r.status === 'unknown')) {
      log.outcome = 'unknown';
      log.code = 'delivery_unknown';
    } else log.outcome = 'sent';
    return { ok: true, results: answeredResults(out.results), ...replayed(out.replayed) };
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
  return { ok: true, results: answeredResults(out.results) };
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
    status: Math.max(...failed.map((r) => statusOfCode(r.error.code))),
    title: 'None of the messages in the batch was sent',
    detail: `none of the ${failed.length} messages was sent${transient ? '; a retry may succeed' : ''}`,
    transient,
    results: failed.map((r) => ({ index: r.index, status: r.status, error: answered(r.error) })),
  };
  if (transient) problem.retryAfter = retryAfter || 30;
  return problem;
}

function replayed(yes: boolean | undefined): { replayed?: true } {
  return yes ? { replayed: true } : {};
}

/** How many messages of a batch ended in each status (the summary line's `accepted`, `queued`, … counts). */
export function countStatuses(results: readonly BatchItemOutcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}
