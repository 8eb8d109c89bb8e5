/**
 * A burst of 500 form posts at concurrency 50 in `queue` mode on the local stack: every post answered 202 with its
 * Message-ID at once; the queue consumer (the event source mapping, maxConcurrency = delivery.maxConnections)
 * delivers all 500 — 0 lost, 0 doubled (Message-IDs counted at the mail catcher) — and the catcher never sees more
 * than `maxConnections` SMTP sessions at once.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_DELIVERY } from '../../functions/config/endpoint.ts';
import { type LocalStack, startLocal } from '../../local/server.ts';
import { tempDir } from '../infra/helpers.ts';
import { inParallel, postContactForm, until } from '../support/delivery-queues.ts';

const POSTS = 500;
const work = tempDir('queue-burst');
let stack: LocalStack;

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  const config = JSON.parse(readFileSync('config/endpoint.json', 'utf8')) as {
    forms: Record<string, Record<string, unknown>>;
  };
  config.forms.contact!.delivery = 'queue';
  const configFile = join(work.dir, 'endpoint.json');
  writeFileSync(configFile, JSON.stringify(config));
  stack = await startLocal({ port: 0, smtpPort: 0, inboxLimit: 1000, configFile });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  work.cleanup();
});

it('500 posts at concurrency 50: all 202, all delivered once, never more than maxConnections sessions', async () => {
  const catcher = stack.catcher!;
  const answers = await inParallel(POSTS, 50, (i) => postContactForm(stack.url, i, 'script'));
  expect(answers.filter((a) => a.status !== 202)).toEqual([]);
  const sent = answers.map((a) => a.messageId!);
  expect(new Set(sent).size).toBe(POSTS);
  await until(() => catcher.store.list().length >= POSTS, 90_000, `${POSTS} arrivals`);
  await until(() => stack.delivery.queued().length === 0, 30_000, 'an empty queue');
  const arrived = catcher.store.list().map((m) => m.parsed.messageId);
  expect(arrived).toHaveLength(POSTS); // 0 doubled
  expect(new Set(arrived)).toEqual(new Set(sent)); // 0 lost
  expect(catcher.sessions.max).toBeGreaterThanOrEqual(1);
  expect(catcher.sessions.max).toBeLessThanOrEqual(DEFAULT_DELIVERY.maxConnections);
}, 150_000);

it('the inbox switch: POST /_local/smtp takes the catcher down (connections refused) and /_local/queue lists the wait', async () => {
  const catcher = stack.catcher!;
  const before = catcher.store.list().length;
  const switchTo = async (down: boolean) => {
    const res = await fetch(`${stack.url}/_local/smtp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ down }),
    });
    expect(await res.json()).toEqual({ down });
  };
  await switchTo(true);
  const refused = await new Promise<string>((resolve) => {
    const socket = connect(catcher.port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  expect(refused).toBe('ECONNREFUSED');
  const { messageId } = await postContactForm(stack.url, 9999, 'script');
  await until(
    () => stack.delivery.queued().some((q) => q.messageId === messageId && q.receiveCount >= 1),
    20_000,
    'a failed try on the queue',
  );
  const listed = (await (await fetch(`${stack.url}/_local/queue`)).json()) as {
    smtp: { down: boolean };
    messages: Array<{ messageId: string; reason: string; to: string[] }>;
  };
  expect(listed.smtp).toEqual({ down: true });
  expect(listed.messages.find((m) => m.messageId === messageId)).toMatchObject({
    reason: 'queued',
    to: ['team@example.com'],
  });
  await switchTo(false);
  await until(() => catcher.store.list().length === before + 1, 90_000, 'the arrival after SMTP is back');
  expect(catcher.store.list()[0]!.parsed.messageId).toBe(messageId);
}, 120_000);
