/**
 * The local stack (`npm start`'s path: HTTP API events → the handler → the local SQS endpoint → the event source
 * mapping → the handler → the mail catcher) while the SMTP server refuses connections for 20 s and 200 form posts
 * arrive: every post is answered (303 for browsers, 202 for scripts) without waiting for the server; when it is
 * back, all 200 arrive exactly once (counted by Message-ID at the catcher).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_DELIVERY } from '../../functions/config/endpoint.ts';
import { type LocalStack, startLocal } from '../../local/server.ts';
import { inParallel, postContactForm, until } from '../support/delivery-queues.ts';

const POSTS = 200;
const OUTAGE_MS = 20_000;
let stack: LocalStack;
// Backoff 3 s doubling to 10 s: a 20 s outage costs each message at most 6 of its 8 receives.

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  stack = await startLocal({
    port: 0,
    smtpPort: 0,
    inboxLimit: 1000,
    retryBaseSeconds: 3,
    retryMaxSeconds: 10,
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

it('SMTP refusing for 20 s, 200 form posts: all answered 303/202, then all 200 delivered exactly once', async () => {
  const catcher = stack.catcher!;
  await catcher.listener.down();
  const downAt = Date.now();
  const answers = await inParallel(POSTS, 20, async (i) => {
    const started = Date.now();
    const answer = await postContactForm(stack.url, i, i % 2 === 0 ? 'browser' : 'script');
    return { ...answer, ms: Date.now() - started };
  });
  const answeredAt = Date.now();
  expect(answeredAt - downAt).toBeLessThan(OUTAGE_MS); // every post was answered while the server was still down
  expect(answers.filter((a, i) => a.status !== (i % 2 === 0 ? 303 : 202))).toEqual([]);
  // Each answer came within the sync budget (plus the enqueue), never after a wait on the server.
  for (const a of answers) expect(a.ms).toBeLessThan(DEFAULT_DELIVERY.syncBudgetMs + 2000);
  expect(catcher.store.list()).toHaveLength(0);
  await new Promise((r) => setTimeout(r, Math.max(0, downAt + OUTAGE_MS - Date.now())));
  await catcher.listener.up();
  await until(() => catcher.store.list().length >= POSTS, 60_000, `${POSTS} arrivals`);
  await until(() => stack.delivery.queued().length === 0, 30_000, 'an empty queue');
  expect(stack.delivery.sqs.messages('smtp-send-dead-letter')).toHaveLength(0); // nothing gave up
  const ids = catcher.store.list().map((m) => m.parsed.messageId);
  expect(ids).toHaveLength(POSTS); // 0 doubled
  expect(new Set(ids).size).toBe(POSTS); // 0 lost
  for (const a of answers.filter((x) => x.messageId)) expect(ids).toContain(a.messageId);
}, 120_000);
