/** The HTTP budget: the earlier of Lambda's remaining time and API Gateway's 30 s counted from `timeEpoch`. */
import { describe, expect, it } from 'vitest';
import { httpRemainingMs } from '../../functions/handlers/http.ts';
import { httpEvent } from './events.ts';

describe('httpRemainingMs', () => {
  it('counts API Gateway’s 30 s from requestContext.timeEpoch (a cold start’s init included)', () => {
    const event = httpEvent({ path: '/send' });
    const now = Date.now();
    event.requestContext.timeEpoch = now - 12_000; // a cold start took 12 s
    expect(httpRemainingMs(event, 29_000, now)).toBe(18_000);
    expect(httpRemainingMs(event, 10_000, now)).toBe(10_000);
    event.requestContext.timeEpoch = now - 40_000; // API Gateway has answered already
    expect(httpRemainingMs(event, 29_000, now)).toBe(0);
    event.requestContext.timeEpoch = now + 60_000; // a clock in the future is not believed
    expect(httpRemainingMs(event, 29_000, now)).toBe(29_000);
  });
});
