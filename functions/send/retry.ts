/**
 * THE retry policy of the use case, in one place: what a failed attempt means (`classify`) and whether there is
 * time and budget for another one (`retryDelay`). The attempt loop in `deliver.ts` only follows these verdicts.
 *
 * - `accepted`: the server took the message (the failure came after, e.g. at QUIT): a success for the caller.
 * - `unknown`: the server may have the message: NEVER resent.
 * - `refresh-secret`: AUTH was refused with 535: the secret may have rotated; read it again and try once more
 *   (that attempt does not count against `maxAttempts`; a second 535 is a failure).
 * - `retry`: a transient failure before anything was handed over: try again after a jittered backoff, while
 *   `maxAttempts` and the deadline allow.
 * - `fail`: permanent.
 */
import type { SmtpError } from '../smtp/error.ts';

export type Verdict = 'accepted' | 'unknown' | 'refresh-secret' | 'retry' | 'fail';

export interface RetryPolicy {
  /** Attempts for transient failures (the 535 re-read does not count). */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Do not start an attempt with less than this left before the deadline. */
  minAttemptMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 3,
  baseDelayMs: 300,
  maxDelayMs: 2000,
  minAttemptMs: 1000,
};

/** SMTP 535 at AUTH: the credentials were refused. */
export function isAuthFailure(e: SmtpError): boolean {
  return e.phase === 'auth' && e.code === 535;
}

/** What one failed attempt means for its message. `refreshed`: the secret was already read again once. */
export function classify(e: SmtpError, refreshed: boolean): Verdict {
  if (e.delivery === 'accepted') return 'accepted';
  if (e.delivery === 'unknown') return 'unknown';
  if (isAuthFailure(e) && !refreshed) return 'refresh-secret';
  return e.transient ? 'retry' : 'fail';
}

/**
 * The wait before attempt `attempt + 1`, or `undefined` when there is none: `maxAttempts` reached, or the
 * backoff plus `minAttemptMs` would end past the deadline.
 */
export function retryDelay(
  attempt: number,
  deadline: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
  now = Date.now(),
): number | undefined {
  if (attempt >= policy.maxAttempts) return undefined;
  const wait = backoff(attempt, policy, random);
  return now + wait + policy.minAttemptMs < deadline ? wait : undefined;
}

/** Exponential backoff with jitter in [d/2, d]. */
export function backoff(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const d = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(d / 2 + (random() * d) / 2);
}
