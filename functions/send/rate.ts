/**
 * `delivery.maxPerSecond`: ONE sending rate shared by every instance of the function (an Amazon SES account's
 * maximum send rate, a provider's per-second cap). The bucket itself lives behind the `SendRate` port (a token
 * bucket item in the send records table, written with conditional updates: functions/store/send-rate.ts); the
 * decisions are here:
 * - `refill`: the bucket holds at most one second's worth of sends (at least one) and refills continuously;
 * - `paced`: the queue's consumer delivers a batch in the chunks the rate grants, waiting for tokens in between
 *   until its deadline; what was never granted goes back to the queue (it is tried later, nothing is lost);
 * - `sync-then-queue` asks for one send before it tries synchronously and queues the message when the rate has
 *   none to give (send/deliver.ts). `sync` is not paced: its caller waits, and a provider's own throttling reply
 *   (SES: `454 Throttling failure`) is a transient failure like any other.
 */

export interface SendRate {
  /** Sends per second, shared by every instance. */
  readonly perSecond: number;
  /** Take up to `wanted` sends now; resolves with the number granted (0 … `wanted`). Rejects when unavailable. */
  take(wanted: number): Promise<number>;
}

/** A bucket as stored: its tokens at epoch ms `at`. */
export interface Bucket {
  tokens: number;
  at: number;
}

/** The tokens in the bucket at `now`: refilled at `perSecond`, at most one second's worth (and at least 1). */
export function refill(bucket: Bucket | undefined, perSecond: number, now: number): number {
  const capacity = Math.max(1, perSecond);
  if (!bucket) return capacity;
  return Math.min(capacity, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * perSecond);
}

/**
 * Deliver `items` in the chunks `rate` grants, waiting for tokens between chunks while `until` (epoch ms) allows.
 * Resolves with the items that were never granted (in order). Without a rate everything is delivered at once.
 * A rate that cannot be read stops the pacing: the rest waits for a later try.
 */
export async function paced<T>(
  items: readonly T[],
  rate: SendRate | undefined,
  until: number,
  deliver: (chunk: T[]) => Promise<void>,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<T[]> {
  if (!rate) {
    if (items.length > 0) await deliver([...items]);
    return [];
  }
  let rest = [...items];
  const wait = Math.max(1, Math.ceil(1000 / rate.perSecond));
  while (rest.length > 0 && Date.now() < until) {
    const granted = await rate.take(rest.length).catch(() => undefined);
    if (granted === undefined) break;
    if (granted > 0) {
      await deliver(rest.slice(0, granted));
      rest = rest.slice(granted);
      continue;
    }
    if (Date.now() + wait >= until) break;
    await sleep(wait);
  }
  return rest;
}

/** How long (s) `waiting` sends take at `perSecond`: the visibility a paced-out queued message gets. */
export function secondsFor(waiting: number, perSecond: number): number {
  return Math.max(1, Math.ceil(waiting / perSecond));
}
