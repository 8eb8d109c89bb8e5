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
import { failureOutcome, type Handled, type Invocation, type InvocationOutcome } from './log.ts';
import { requireConfig } from './runtime.ts';

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
 * the request; answer when something was (or may have been) delivered — `delivery_unknown`, a batch partly
 * delivered — and otherwise hand back `thrown: fail(problem)` for the handler to throw, so Lambda retries an
 * asynchronous invocation and then hands it to the on-failure destination. A thrown error that is not a
 * `SendError` (a bug) is rethrown as is. `logFields` are added to each `batch_partial_failure` line (e.g. the
 * EventBridge event id).
 */
export async function deliverUnderAsyncPolicy(
  payload: unknown,
  inv: Invocation,
  fail: (problem: InvocationProblem) => Error,
  logFields: Record<string, unknown> = {},
  key?: RequestKey,
): Promise<Handled> {
  const { rt, entryPoint } = inv;
  let out: DeliveredAnswer;
  try {
    requireConfig(rt);
    out = await deliverOnce(payload, rt.deps, rt.idempotency, {
      requeuePartial: true,
      deadline: deadlineFrom(inv.remainingMs()),
      trace: inv.trace,
      origin: entryPoint === 'eventbridge' || entryPoint === 'sqs_redrive' ? entryPoint : 'direct_invoke',
      ...(key ? { key } : {}),
    });
  } catch (e) {
    if (!(e instanceof SendError)) throw e;
    const outcome = { ...failureOutcome(e), ...replayed(e.replayed) };
    // Not thrown: a retry could deliver the message twice. The summary line is logged at ERROR with this code.
    if (e.code === 'delivery_unknown') {
      return { response: { ok: false, error: toProblem(e), ...replayed(e.replayed) }, outcome };
    }
    outcome.outcome = e.transient ? 'failed' : 'rejected';
    return { thrown: fail(invocationProblemOf(e)), outcome };
  }
  if (out.kind === 'single') {
    const { kind: _, replayed: again, ...result } = out;
    const outcome: InvocationOutcome = {
      messages: 1,
      outcome: result.status === 'sent' ? 'sent' : 'queued',
      ...replayed(out.replayed),
    };
    return { response: { ok: true, ...result, ...replayed(again) }, outcome };
  }
  return batchAnswer(out.results, out.replayed, inv, fail, logFields);
}

/** A batch under the policy: answered unless nothing went out (then thrown: a retry resends the whole batch). */
function batchAnswer(
  results: BatchItemOutcome[],
  wasReplayed: boolean | undefined,
  inv: Invocation,
  fail: (problem: InvocationProblem) => Error,
  logFields: Record<string, unknown>,
): Handled {
  const outcome: InvocationOutcome = {
    messages: results.length,
    counts: countStatuses(results),
    ...replayed(wasReplayed),
  };
  const failed = results.filter((r): r is NotSent => r.status === 'rejected' || r.status === 'not_sent');
  const delivered = results.filter((r) => r.status !== 'rejected' && r.status !== 'not_sent');
  const line = { entryPoint: inv.entryPoint, ...logFields };
  // Each unknown message of a batch gets its own ERROR line with the code the unknown-delivery alarm counts.
  for (const r of results) {
    if (r.status !== 'unknown') continue;
    inv.rt.logger.error('batch message delivery unknown', {
      code: 'delivery_unknown',
      ...line,
      index: r.index,
      messageId: r.messageId,
      smtpCode: r.error.smtp?.code,
    });
  }
  if (failed.length === 0) {
    if (delivered.some((r) => r.status === 'unknown')) {
      outcome.outcome = 'unknown';
      outcome.code = 'delivery_unknown';
    } else outcome.outcome = 'sent';
    return { response: { ok: true, results: answeredResults(results), ...replayed(wasReplayed) }, outcome };
  }
  if (delivered.length === 0) {
    // Nothing went out: a retry resends the whole batch, which is safe.
    const problem = batchFailed(failed);
    return {
      thrown: fail(problem),
      outcome: { ...outcome, outcome: problem.transient ? 'failed' : 'rejected', code: 'batch_failed' },
    };
  }
  for (const r of failed) {
    inv.rt.logger.error('batch message not delivered', {
      code: 'batch_partial_failure',
      ...line,
      index: r.index,
      status: r.status,
      errorCode: r.error.code,
      smtpCode: r.error.smtp?.code,
      fieldErrors: r.error.errors?.slice(0, 10).map((e) => `${e.field}:${e.code}`),
    });
  }
  outcome.outcome = 'partial';
  outcome.code = 'batch_partial_failure';
  return { response: { ok: true, results: answeredResults(results) }, outcome };
}

/** `batch_failed`: transient when any message was `not_sent`; the status is the worst of the messages'. */
function batchFailed(failed: NotSent[]): InvocationProblem {
  const transient = failed.some((r) => r.status === 'not_sent');
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
