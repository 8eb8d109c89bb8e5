/**
 * Idempotency on every entry point, against two independent DynamoDB implementations (dynalite and moto_server),
 * with the real SDK and Powertools: the repeat sends nothing new (counted at smtp-server by Message-ID) and
 * answers as the first did; a different payload under a used key → 422; a concurrent repeat → 409.
 */
import { randomUUID } from 'node:crypto';
import type { SMTPServerOptions } from 'smtp-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HttpResult } from '../../functions/handlers/http.ts';
import { DynamoSendRecords } from '../../functions/store/send-records.ts';
import { createLambdaContext } from '../../local/lambda-context.ts';
import { type CountingClient, type DynamoEndpoint, startDynalite, startMoto } from '../support/dynamodb.ts';
import {
  destinationRecord,
  eventBridgeEvent,
  formEvent,
  httpEvent,
  sendEvent,
  sqsEvent,
  sqsRecord,
} from './events.ts';
import { type Harness, startHarness } from './harness.ts';

const config = {
  send: { allowedRecipients: ['*@example.com'] },
  limits: { maxBatch: 5 },
  forms: {
    contact: { to: 'team@example.com', subject: 'Contact: {{name}}', fields: { name: { required: true } } },
    short: { to: 'team@example.com', subject: 'Short window', dedupeWindowSeconds: 1 },
  },
};

// biome-ignore lint/suspicious/noExplicitAny: reading response JSON in assertions
const bodyOf = (r: HttpResult) => JSON.parse(String(r.body)) as Record<string, any>;
/**
 * smtp-server's onData, capturing like test/support/smtp-server.ts, that can hold its reply to the final dot
 * (`hold()`: resolves `arrived` when the message is in, answers after `release()`).
 */
const gate = {
  pending: undefined as undefined | { arrive(): void; released: Promise<void> },
  hold() {
    let arrive!: () => void;
    let release!: () => void;
    const arrived = new Promise<void>((r) => (arrive = r));
    const released = new Promise<void>((r) => (release = r));
    gate.pending = { arrive, released };
    return { arrived, release };
  },
  onData(harness: () => Harness): NonNullable<SMTPServerOptions['onData']> {
    return (stream, session, cb) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', async () => {
        const p = gate.pending;
        gate.pending = undefined;
        if (p) {
          p.arrive();
          await p.released;
        }
        const h = harness();
        h.srv.messages.push({
          envelope: { from: '', to: session.envelope.rcptTo.map((r) => r.address) },
          raw: Buffer.concat(chunks),
          secure: session.secure,
          mailParams: {},
          ehlo: session.hostNameAppearsAs,
        });
        cb(null, `Ok: queued as Q${h.srv.messages.length}`);
      });
    };
  },
};

const message = (n = 1) => ({ to: 'alice@example.com', subject: `Order ${n}`, text: `Body ${n}` });

describe.each([
  ['dynalite', startDynalite],
  ['moto_server', startMoto],
] as const)('idempotency against %s', (_name, start) => {
  let ddb: DynamoEndpoint;
  let client: CountingClient;
  let h: Harness;
  const arrivals = () => h.srv.messages.map((m) => /^Message-ID:\s*(\S+)/imu.exec(m.raw.toString())?.[1]);
  const post = async (body: unknown, headers?: Record<string, string>) =>
    (await h.invoke(sendEvent(body, headers))) as HttpResult;

  beforeAll(async () => {
    ddb = await start();
    await ddb.createTable('send-records');
    client = ddb.client();
    h = await startHarness({
      config,
      records: new DynamoSendRecords({ tableName: 'send-records', client }),
      smtp: { extra: { onData: gate.onData(() => h) } },
    });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    client?.destroy();
    await ddb?.close();
  });
  beforeEach(() => {
    h.srv.messages.length = 0;
    client.calls.length = 0;
  });

  it('POST /send with Idempotency-Key: the repeat replays the answer and sends nothing', async () => {
    const key = randomUUID();
    const first = await post(message(), { 'idempotency-key': key });
    expect(first.statusCode).toBe(200);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const callsFirst = [...client.calls];
    const second = await post(message(), { 'idempotency-key': key });
    expect(second.statusCode).toBe(200);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(bodyOf(second)).toEqual(bodyOf(first));
    expect(arrivals()).toEqual([bodyOf(first).messageId]);
    // Claim (Powertools put), marker (our update), completion (Powertools update).
    expect(callsFirst).toEqual(['PutItem', 'UpdateItem', 'UpdateItem']);
  });

  it('the same key with a different payload → 422 idempotency_key_reused, nothing sent', async () => {
    const key = randomUUID();
    expect((await post(message(1), { 'idempotency-key': key })).statusCode).toBe(200);
    const other = await post(message(2), { 'idempotency-key': key });
    expect(other.statusCode).toBe(422);
    expect(bodyOf(other).code).toBe('idempotency_key_reused');
    expect(h.srv.messages).toHaveLength(1);
  });

  it('without a key nothing is deduplicated: two posts, two mails, two status records', async () => {
    const a = bodyOf(await post(message()));
    const b = bodyOf(await post(message()));
    expect(a.messageId).not.toBe(b.messageId);
    expect(arrivals()).toEqual([a.messageId, b.messageId]);
    // Keyless: the marker put and the final update, per message.
    expect(client.calls).toEqual(['PutItem', 'UpdateItem', 'PutItem', 'UpdateItem']);
  });

  it('a bad Idempotency-Key header → 400 validation_failed', async () => {
    const res = await post(message(), { 'idempotency-key': 'x'.repeat(257) });
    expect(res.statusCode).toBe(400);
    expect(bodyOf(res).errors[0].field).toBe('idempotency-key');
    expect(h.srv.messages).toHaveLength(0);
  });

  it('a concurrent repeat → 409 idempotency_in_progress with Retry-After; one mail', async () => {
    const key = randomUUID();
    const held = gate.hold();
    const first = post(message(), { 'idempotency-key': key });
    await held.arrived;
    const second = await post(message(), { 'idempotency-key': key });
    held.release();
    expect(second.statusCode).toBe(409);
    expect(bodyOf(second).code).toBe('idempotency_in_progress');
    expect(Number(second.headers['retry-after'])).toBeGreaterThan(0);
    expect((await first).statusCode).toBe(200);
    expect(h.srv.messages).toHaveLength(1);
  });

  it('a retried batch re-sends only the messages that were not delivered', async () => {
    const key = randomUUID();
    const batch = { messages: [message(1), { ...message(2), to: 'nobody@example.net' }, message(3)] };
    const first = bodyOf(await post(batch, { 'idempotency-key': key }));
    expect(first.results.map((r: { status: string }) => r.status)).toEqual([
      'accepted',
      'rejected',
      'accepted',
    ]);
    expect(h.srv.messages).toHaveLength(2);
    const fixed = { messages: [message(1), message(2), message(3)] };
    const res = await post(fixed, { 'idempotency-key': key });
    const second = bodyOf(res);
    expect(second.results.map((r: { status: string }) => r.status)).toEqual([
      'accepted',
      'accepted',
      'accepted',
    ]);
    expect(second.results[0].replayed).toBe(true);
    expect(second.results[1].replayed).toBeUndefined();
    expect(second.results[2].messageId).toBe(first.results[2].messageId);
    expect(res.headers['idempotent-replayed']).toBeUndefined();
    expect(h.srv.messages).toHaveLength(3);
  });

  it('EventBridge: the same event delivered twice (Lambda retry) sends one mail', async () => {
    const event = eventBridgeEvent(message());
    const first = (await h.invoke(event)) as Record<string, unknown>;
    const second = (await h.invoke(event)) as Record<string, unknown>;
    expect(second).toEqual({ ...first, replayed: true });
    expect(arrivals()).toEqual([first.messageId]);
  });

  it('direct invoke: idempotencyKey in the payload, and the request id of an asynchronous invoke', async () => {
    const key = randomUUID();
    const a = (await h.invoke({ ...message(), idempotencyKey: key })) as Record<string, unknown>;
    const b = (await h.invoke({ ...message(), idempotencyKey: key })) as Record<string, unknown>;
    expect(b).toEqual({ ...a, replayed: true });
    // Lambda retries an asynchronous invoke with the same request id.
    const context = createLambdaContext(30_000);
    const c = (await h.handler(message(7), context)) as Record<string, unknown>;
    const d = (await h.handler(message(7), { ...context })) as Record<string, unknown>;
    expect(d).toEqual({ ...c, replayed: true });
    expect(arrivals()).toEqual([a.messageId, c.messageId]);
  });

  const submit = async (formId: string, fields: Record<string, string>) =>
    (await h.invoke(
      formEvent(formId, {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      }),
    )) as HttpResult;

  it('forms: a double submit (or a reload) answers as the first did and sends one mail', async () => {
    const fields = { name: `Ada ${randomUUID()}`, message: 'Hello  there' };
    const first = await submit('contact', fields);
    const again = await submit('contact', { ...fields, message: ' Hello there ' }); // the same, normalised
    expect(first.statusCode).toBe(200);
    expect(again.statusCode).toBe(first.statusCode);
    expect(again.body).toBe(first.body);
    expect(h.srv.messages).toHaveLength(1);
    const other = await submit('contact', { ...fields, message: 'Something else' });
    expect(other.statusCode).toBe(200);
    expect(h.srv.messages).toHaveLength(2);
  });

  it('forms: a concurrent repeat waits for the first and answers as it did (no 409 for a person)', async () => {
    const fields = { name: `Grace ${randomUUID()}` };
    const held = gate.hold();
    const first = submit('contact', fields);
    await held.arrived;
    const second = submit('contact', fields);
    await new Promise((r) => setTimeout(r, 300));
    held.release();
    const [a, b] = await Promise.all([first, second]);
    expect(a.statusCode).toBe(200);
    expect(b.statusCode).toBe(200);
    expect(b.body).toBe(a.body);
    expect(h.srv.messages).toHaveLength(1);
  });

  it('forms: after forms.<id>.dedupeWindowSeconds the same submission is a new mail', async () => {
    const fields = { note: randomUUID() };
    await submit('short', fields);
    await submit('short', fields);
    expect(h.srv.messages).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 2100));
    await submit('short', fields);
    expect(h.srv.messages).toHaveLength(2);
  });

  it('DLQ redrive of an event that was in fact delivered: replayed, deleted, no second mail', async () => {
    const event = eventBridgeEvent(message(9));
    const sent = (await h.invoke(event)) as Record<string, unknown>;
    const out = (await h.invoke(sqsEvent(sqsRecord(JSON.stringify(destinationRecord(event)))))) as {
      batchItemFailures: unknown[];
    };
    expect(out.batchItemFailures).toEqual([]);
    expect(arrivals()).toEqual([sent.messageId]);
    const line = h.logs.find((l) => l.entryPoint === 'sqs_redrive' && l.eventId === event.id);
    expect(line).toMatchObject({ disposition: 'sent', replayed: true });
  });

  it('direct invoke: a different payload under a used key → idempotency_key_reused; a concurrent one → in progress (transient)', async () => {
    const key = randomUUID();
    await h.invoke({ ...message(1), idempotencyKey: key });
    await expect(h.invoke({ ...message(2), idempotencyKey: key })).rejects.toMatchObject({
      name: 'idempotency_key_reused',
      transient: false,
    });
    const other = randomUUID();
    const held = gate.hold();
    const first = h.invoke({ ...message(3), idempotencyKey: other });
    await held.arrived;
    const second = h.invoke({ ...message(3), idempotencyKey: other }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(await second).toMatchObject({ name: 'idempotency_in_progress', transient: true });
    held.release();
    await first;
    expect(h.srv.messages).toHaveLength(2);
  });

  it('status: GET /messages/{messageId} and {"action":"status"} answer for keyed and keyless messages', async () => {
    const keyed = bodyOf(await post(message(), { 'idempotency-key': randomUUID() }));
    const keyless = bodyOf(await post(message()));
    for (const id of [keyed.messageId, keyless.messageId]) {
      const res = (await h.invoke(
        httpEvent({ method: 'GET', path: `/messages/${encodeURIComponent(id)}`, iam: true }),
      )) as HttpResult;
      expect(res.statusCode).toBe(200);
      const s = bodyOf(res);
      expect(s).toMatchObject({ messageId: id, state: 'sent', attempts: 1 });
      expect(s.accepted).toEqual([{ address: 'alice@example.com', code: 250 }]);
      expect(s.reply.code).toBe(250);
      const direct = (await h.invoke({ action: 'status', messageId: id })) as Record<string, unknown>;
      expect(direct).toEqual({ ok: true, status: s });
      // Without IAM authentication: domains only, and no server text (it may repeat an address).
      const anonymous = bodyOf(
        (await h.invoke(
          httpEvent({ method: 'GET', path: `/messages/${encodeURIComponent(id)}` }),
        )) as HttpResult,
      );
      expect(anonymous.accepted).toEqual([{ address: '*@example.com', code: 250 }]);
      expect(anonymous.reply).toEqual({ code: 250, text: '', queueId: s.reply.queueId });
    }
    const missing = (await h.invoke(
      httpEvent({ method: 'GET', path: '/messages/%3Cnope%40example.com%3E', iam: true }),
    )) as HttpResult;
    expect(missing.statusCode).toBe(404);
    expect(bodyOf(missing).code).toBe('message_not_found');
  });
});
