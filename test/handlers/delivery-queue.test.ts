/**
 * Queued delivery end to end: the handler (HTTP API events, EventBridge) enqueues through its own SQS client
 * (functions/queue/sqs.ts) on the local SQS endpoint, the local event source mapping hands the batches back to the
 * same handler in Lambda's SQS event shape, and smtp-server counts arrivals by Message-ID.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { prefersAsync } from '../../functions/handlers/send-route.ts';
import { ListenerSwitch } from '../../local/listener-switch.ts';
import { type DeliveryQueues, messageIdOf, startDeliveryQueues, until } from '../support/delivery-queues.ts';
import { eventBridgeEvent, formEvent, sendEvent } from './events.ts';
import { type Harness, startBlackholeHarness, startHarness } from './harness.ts';

const ORIGIN = 'https://www.example.com';
const fields = { name: 'Ana', email: 'ana@example.org', message: 'Hello' };
const form = (extra: Record<string, unknown> = {}) => ({
  to: ['team@example.com'],
  subject: 'Contact: {{name}}',
  fields: { name: { required: true }, email: { required: true, type: 'email' }, message: {} },
  allowedOrigins: [ORIGIN],
  redirect: `${ORIGIN}/thanks`,
  ...extra,
});

describe('queued delivery', () => {
  let h: Harness;
  let q: DeliveryQueues;
  let smtp: ListenerSwitch;
  /** Recipients starting with "defer" get 451 while this is true. */
  const server = { deferring: true, throttleNext: 0 };

  beforeAll(async () => {
    q = await startDeliveryQueues();
    h = await startHarness({
      config: {
        send: { allowedRecipients: ['*@example.com'] },
        forms: {
          contact: form(),
          queued: form({ delivery: 'queue' }),
          pair: form({ to: ['team@example.com', 'defer-b@example.com'], delivery: 'sync' }),
        },
      },
      env: q.env,
      smtp: {
        extra: {
          onMailFrom(_address, _session, cb) {
            if (server.throttleNext > 0) {
              server.throttleNext--;
              cb(
                Object.assign(new Error('4.7.0 Throttling failure: Maximum sending rate exceeded.'), {
                  responseCode: 454,
                }),
              );
            } else cb();
          },
          onRcptTo(address, _session, cb) {
            const local = address.address.split('@')[0] ?? '';
            if (local.startsWith('reject')) {
              cb(Object.assign(new Error('5.1.1 No such user'), { responseCode: 550 }));
            } else if (local.startsWith('defer') && server.deferring) {
              cb(Object.assign(new Error('4.2.0 Try again later'), { responseCode: 451 }));
            } else cb();
          },
        },
      },
    });
    smtp = new ListenerSwitch(h.srv.server.server);
    q.consume(h.handler);
  }, 30_000);

  afterAll(async () => {
    await smtp?.up();
    await q?.close();
    await h?.close();
  });

  beforeEach(async () => {
    await smtp.up();
    server.deferring = true;
    server.throttleNext = 0;
    await until(() => q.pending() === 0, 20_000, 'an empty delivery queue');
    h.srv.messages.length = 0;
    h.logs.length = 0;
  });

  const arrivals = (messageId: string) => h.srv.messages.filter((m) => messageIdOf(m.raw) === messageId);
  const post = (formId: string, json = true) =>
    h.invoke(
      formEvent(formId, {
        headers: json
          ? { 'content-type': 'application/json', origin: ORIGIN, 'sec-fetch-mode': 'cors' }
          : {
              'content-type': 'application/x-www-form-urlencoded',
              origin: ORIGIN,
              'sec-fetch-mode': 'navigate',
            },
        body: json ? JSON.stringify(fields) : new URLSearchParams(fields).toString(),
      }),
    ) as Promise<APIGatewayProxyStructuredResultV2>;
  const body = (res: APIGatewayProxyStructuredResultV2) =>
    JSON.parse(String(res.body)) as Record<string, unknown>;

  it('queue mode: 202 with the Message-ID at once; the consumer delivers it exactly once', async () => {
    const res = await post('queued');
    expect(res.statusCode).toBe(202);
    const { messageId, status } = body(res) as { messageId: string; status: string };
    expect(status).toBe('queued');
    expect(messageId).toMatch(/^<[0-9a-f]{32}@example\.com>$/u);
    await until(() => arrivals(messageId).length === 1, 15_000, 'the arrival');
    await until(() => q.pending() === 0, 15_000, 'the queue to empty');
    expect(arrivals(messageId)).toHaveLength(1);
    expect(arrivals(messageId)[0]!.envelope.to).toEqual(['team@example.com']);
  });

  it('sync-then-queue (the forms default): SMTP down → 303 and queued; delivered once when it is back', async () => {
    await smtp.down();
    const res = await post('contact', false);
    expect(res.statusCode).toBe(303);
    expect(res.headers?.location).toBe(`${ORIGIN}/thanks`);
    const summary = h.logs.find((l) => l.entryPoint === 'http_form');
    expect(summary).toMatchObject({ outcome: 'queued', status: 303 });
    const json = await post('contact');
    expect(json.statusCode).toBe(202);
    const { messageId } = body(json) as { messageId: string };
    expect(q.pending()).toBe(2);
    await new Promise((r) => setTimeout(r, 1500)); // the consumer tries and fails meanwhile
    expect(h.srv.messages).toHaveLength(0);
    await smtp.up();
    await until(() => h.srv.messages.length === 2, 20_000, 'both arrivals');
    await until(() => q.pending() === 0, 15_000, 'the queue to empty');
    expect(arrivals(messageId)).toHaveLength(1);
    expect(h.logs.some((l) => l.disposition === 'retry' && l.code === 'smtp_unavailable')).toBe(true);
  });

  it('sync-then-queue with SMTP up is delivered in the request: 200 status sent', async () => {
    const res = await post('contact');
    expect(res.statusCode).toBe(200);
    const { messageId, status } = body(res) as { messageId: string; status: string };
    expect(status).toBe('sent');
    expect(arrivals(messageId)).toHaveLength(1);
    expect(q.pending()).toBe(0);
  });

  it('a recipient refused with 451 is deferred: re-queued for it only; each recipient gets it once', async () => {
    const res = await post('pair');
    expect(res.statusCode).toBe(200);
    const { messageId } = body(res) as { messageId: string };
    expect(arrivals(messageId).map((m) => m.envelope.to)).toEqual([['team@example.com']]);
    expect(q.pending()).toBe(1);
    // The re-queued copy (to the deferred recipient only) is refused again while the server defers: retried.
    await until(
      () =>
        h.logs.some((l) => l.disposition === 'retry' && l.messageId === messageId && l.reason === 'deferred'),
      15_000,
      'a deferred retry',
    );
    server.deferring = false;
    await until(() => arrivals(messageId).length === 2, 20_000, 'the deferred arrival');
    await until(() => q.pending() === 0, 15_000, 'the queue to empty');
    expect(arrivals(messageId).map((m) => m.envelope.to)).toEqual([
      ['team@example.com'],
      ['defer-b@example.com'],
    ]);
  });

  it('/send: Prefer: respond-async → 202 + Preference-Applied; without it, sync (200 status sent)', async () => {
    const msg = { to: 'a@example.com', subject: 'Async', text: 'x' };
    const queued = (await h.invoke(
      sendEvent(msg, { prefer: 'wait=5, respond-async' }),
    )) as APIGatewayProxyStructuredResultV2;
    expect(queued.statusCode).toBe(202);
    expect(queued.headers?.['preference-applied']).toBe('respond-async');
    const { messageId } = body(queued) as { messageId: string };
    const sync = (await h.invoke(sendEvent(msg))) as APIGatewayProxyStructuredResultV2;
    expect(sync.statusCode).toBe(200);
    expect(body(sync)).toMatchObject({ status: 'sent', accepted: ['a@example.com'], rejected: [] });
    await until(() => arrivals(messageId).length === 1, 15_000, 'the queued arrival');
  });

  it('throttling (454) leaves the message on the queue, hidden with ChangeMessageVisibility, then delivers it', async () => {
    const before = q.sqs.calls.get('ChangeMessageVisibility') ?? 0;
    server.throttleNext = 2;
    const res = (await h.invoke(
      sendEvent({ to: 'a@example.com', subject: 'Throttled', text: 'x' }, { prefer: 'respond-async' }),
    )) as APIGatewayProxyStructuredResultV2;
    const { messageId } = body(res) as { messageId: string };
    await until(() => arrivals(messageId).length === 1, 20_000, 'the arrival after throttling');
    expect((q.sqs.calls.get('ChangeMessageVisibility') ?? 0) - before).toBeGreaterThanOrEqual(1);
    const retry = h.logs.find((l) => l.disposition === 'retry' && l.messageId === messageId);
    expect(retry).toMatchObject({ smtpCode: 454, code: 'smtp_unavailable' });
    await until(() => q.pending() === 0, 15_000, 'the queue to empty');
  });

  it('a permanent refusal (550) goes to the dead-letter queue at once, not retried', async () => {
    const dead = q.deadLettered();
    await h.invoke(
      sendEvent({ to: 'reject-x@example.com', subject: 'No', text: 'x' }, { prefer: 'respond-async' }),
    );
    await until(() => q.deadLettered() === dead + 1, 15_000, 'the dead-lettered message');
    await until(() => q.pending() === 0, 15_000, 'the queue to empty');
    expect(h.logs.filter((l) => l.disposition === 'dead_letter')).toHaveLength(1);
    expect(h.srv.messages).toHaveLength(0);
  });

  it('a partly delivered EventBridge batch re-queues its transient message instead of logging it', async () => {
    const out = (await h.invoke(
      eventBridgeEvent({
        messages: [
          { to: 'a@example.com', subject: 'One', text: 'x' },
          { to: 'defer-c@example.com', subject: 'Two', text: 'x' },
        ],
      }),
    )) as { ok: boolean; results: Array<{ status: string; messageId: string }> };
    expect(out.results.map((r) => r.status)).toEqual(['accepted', 'queued']);
    expect(h.logs.some((l) => l.code === 'batch_partial_failure')).toBe(false);
    server.deferring = false;
    await until(() => arrivals(out.results[1]!.messageId).length === 1, 20_000, 'the re-queued arrival');
    expect(arrivals(out.results[0]!.messageId)).toHaveLength(1);
  });
});

describe('a mixed batch: each unknown and each refused message has its own alarmed line', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startBlackholeHarness();
  }, 30_000);
  afterAll(async () => h?.close());

  it('accepted + refused for good + unknown: returned; delivery_unknown and batch_partial_failure lines', async () => {
    const out = (await h.invoke(
      eventBridgeEvent({
        messages: [
          { to: 'a@example.com', subject: 'One', text: 'x' },
          { to: 'reject-y@example.com', subject: 'Two', text: 'x' },
          { to: 'blackhole-z@example.com', subject: 'Three', text: 'x' },
        ],
      }),
      5000,
    )) as { ok: boolean; results: Array<{ status: string }> };
    expect(out.results.map((r) => r.status)).toEqual(['accepted', 'rejected', 'unknown']);
    // The two lines the DeliveryUnknown and BatchPartialFailure metric filters count (infra/smtp-send-endpoint.ts).
    expect(h.logs.find((l) => l.code === 'delivery_unknown' && l.index === 2)).toMatchObject({
      level: 'ERROR',
    });
    expect(h.logs.find((l) => l.code === 'batch_partial_failure' && l.index === 1)).toMatchObject({
      level: 'ERROR',
      errorCode: 'smtp_rejected',
    });
  });
});

describe('Prefer', () => {
  it('Prefer: respond-async is found among other preferences (RFC 7240)', () => {
    expect(prefersAsync('respond-async')).toBe(true);
    expect(prefersAsync('wait=10, Respond-Async')).toBe(true);
    expect(prefersAsync('return=minimal; foo="respond-async"')).toBe(false);
    expect(prefersAsync(undefined)).toBe(false);
  });
});
