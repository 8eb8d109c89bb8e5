/** `delivery.maxPerSecond`'s decisions: the bucket's refill and the pacing of a batch (send/rate.ts). */
import { describe, expect, it } from 'vitest';
import { paced, refill, type SendRate, secondsFor } from '../../functions/send/rate.ts';

/** A bucket in memory with the same refill rule as the table's (the table's own test is store/send-rate). */
function memoryRate(perSecond: number, clock: { now: number }): SendRate & { taken: number[] } {
  let bucket: { tokens: number; at: number } | undefined;
  const taken: number[] = [];
  return {
    perSecond,
    taken,
    async take(wanted) {
      const available = refill(bucket, perSecond, clock.now);
      const granted = Math.min(wanted, Math.floor(available));
      bucket = { tokens: available - granted, at: clock.now };
      taken.push(granted);
      return granted;
    },
  };
}

describe('refill', () => {
  it('a new bucket holds one second of sends (at least one); it refills continuously up to that', () => {
    expect(refill(undefined, 14, 0)).toBe(14);
    expect(refill(undefined, 0.5, 0)).toBe(1);
    expect(refill({ tokens: 0, at: 1000 }, 14, 1500)).toBe(7);
    expect(refill({ tokens: 3, at: 1000 }, 14, 60_000)).toBe(14);
    // A clock behind the stored one never takes tokens away.
    expect(refill({ tokens: 3, at: 2000 }, 14, 1000)).toBe(3);
  });
  it('secondsFor: how long the waiting sends take at the rate', () => {
    expect(secondsFor(25, 10)).toBe(3);
    expect(secondsFor(1, 100)).toBe(1);
  });
});

describe('paced', () => {
  it('delivers a batch in the chunks the rate grants, waiting between them', async () => {
    const clock = { now: 0 };
    const rate = memoryRate(10, clock);
    const chunks: number[][] = [];
    const rest = await paced(
      Array.from({ length: 25 }, (_, i) => i),
      rate,
      Number.POSITIVE_INFINITY,
      async (c) => void chunks.push(c),
      async (ms) => {
        clock.now += ms;
      },
    );
    expect(rest).toEqual([]);
    expect(chunks.flat()).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(chunks[0]).toHaveLength(10);
    // 25 sends at 10/s: the first 10 at once, then one per 100 ms of simulated time.
    expect(clock.now).toBe(1500);
  });
  it('stops at its deadline and hands back what was never granted, in order', async () => {
    const clock = { now: Date.now() };
    const rate = memoryRate(2, clock);
    const sent: number[] = [];
    const rest = await paced([1, 2, 3, 4, 5], rate, Date.now() + 200, async (c) => void sent.push(...c));
    expect(sent).toEqual([1, 2]);
    expect(rest).toEqual([3, 4, 5]);
  });
  it('a rate that cannot be read sends nothing now (the queue tries later); no rate sends everything', async () => {
    const broken: SendRate = { perSecond: 5, take: () => Promise.reject(new Error('table unavailable')) };
    const sent: number[] = [];
    expect(await paced([1, 2], broken, Date.now() + 10_000, async (c) => void sent.push(...c))).toEqual([
      1, 2,
    ]);
    expect(sent).toEqual([]);
    expect(await paced([1, 2], undefined, 0, async (c) => void sent.push(...c))).toEqual([]);
    expect(sent).toEqual([1, 2]);
  });
});
