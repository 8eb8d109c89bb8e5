/**
 * Direct invoke (`aws lambda invoke`, Step Functions): the payload is the `/send` shape (or a batch).
 *
 * Lambda gives a function no way to tell a synchronous invoke from an asynchronous one
 * (`--invocation-type Event`), and only a THROWN error makes Lambda retry an asynchronous invocation and then
 * hand it to the on-failure destination (the DLQ). So direct invoke applies the EventBridge failure policy
 * (`deliverUnderAsyncPolicy`):
 * - sent → returns `{ ok: true, messageId, accepted, rejected }` (batch: `{ ok: true, results }`);
 * - any failure where nothing was sent → throws `DirectInvokeError`: `name` (Lambda's `errorType`) is the stable
 *   code (`validation_failed`, `smtp_unavailable`, `batch_failed`, …) so Step Functions can `Retry`/`Catch` on
 *   it, and `message` (`errorMessage`) is the problem as a JSON string
 *   `{ code, status, title, detail, errors?, smtp?, retryAfter?, transient, results? }` for callers to parse;
 * - `delivery_unknown` → returned `{ ok: false, error }`, never thrown (a retry could deliver twice);
 * - a batch partly delivered → returned `{ ok: true, results }` (each failure logged `batch_partial_failure`).
 */
import { SendError } from '../send/errors.ts';
import { messageStatus } from '../send/status.ts';
import { deliverUnderAsyncPolicy, type InvocationProblem, invocationProblemOf } from './async-policy.ts';
import { asFailed, type FailureCode } from './failure.ts';
import { failureOutcome, type Handled, type Invocation } from './log.ts';
import { requireConfig } from './runtime.ts';

/**
 * A failed direct invoke, as Lambda reports it: `errorType` = `name` = the stable code, `errorMessage` =
 * `message` = the problem as JSON. `stack` is that one line only: Lambda's Node runtime returns the stack's lines
 * as `trace` in the invoke response, and code paths are not the caller's business.
 */
export class DirectInvokeError extends Error {
  override readonly name: FailureCode;
  readonly code: FailureCode;
  readonly transient: boolean;
  readonly problem: InvocationProblem;

  constructor(problem: InvocationProblem) {
    super(JSON.stringify(problem));
    this.name = problem.code;
    this.code = problem.code;
    this.transient = problem.transient;
    this.problem = problem;
    this.stack = `${this.name}: ${this.message}`;
  }
}

/**
 * `requestId`: the invocation's original request id. Lambda's automatic retries of an asynchronous invoke keep it,
 * and a DLQ redrive passes the original's, so it is the key of a payload without its own `idempotencyKey`.
 */
export async function handleDirect(payload: unknown, inv: Invocation, requestId?: string): Promise<Handled> {
  const { rt } = inv;
  try {
    requireConfig(rt);
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw new SendError('validation_failed', 'the payload must be a JSON object (the /send shape)', {
        errors: [{ field: 'payload', code: 'invalid_type', message: 'must be an object' }],
      });
    }
    if ('action' in payload) return await directAction(payload as Record<string, unknown>, inv);
    return await deliverUnderAsyncPolicy(
      payload,
      inv,
      (p) => new DirectInvokeError(p),
      {},
      requestId ? { scope: 'request', value: requestId } : undefined,
    );
  } catch (e) {
    const err = asFailed(e);
    if (err.code === 'internal_error') rt.logger.error('direct invoke failed', { error: e as Error });
    return { thrown: new DirectInvokeError(invocationProblemOf(err)), outcome: failureOutcome(err) };
  }
}

/** `{"action":"status","messageId":…}`: the message's status (the caller is IAM-authenticated: full addresses). */
async function directAction(payload: Record<string, unknown>, inv: Invocation): Promise<Handled> {
  if (payload.action !== 'status') {
    throw new SendError('validation_failed', 'action: only "status" is known', {
      errors: [{ field: 'action', code: 'invalid', message: 'must be "status"' }],
    });
  }
  const status = await messageStatus(inv.rt.idempotency, payload.messageId, { full: true });
  return { response: { ok: true, status }, outcome: { outcome: 'status' } };
}
