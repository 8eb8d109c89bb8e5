/**
 * Queued delivery meets idempotency, against dynalite and moto_server with the real SDK: a queued message has the
 * status `queued` from the moment it is answered, a repeat of the request is answered from its record (same
 * Message-ID, nothing queued twice), and the consumer delivers each queued message at most once however often SQS
 * hands the record over (a redelivery after success, two consumers at once, a redelivery after an unknown end).
 * Records are handed to the handler in Lambda's SQS event shape; arrivals are counted at smtp-server by Message-ID.
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { SMTPServerOptions } from 'smtp-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HttpResult } from '../../functions/handlers/http.ts';
import { DynamoSendRecords } from '../../functions/store/send-records.ts';
import { type DeliveryQueues, messageIdOf, startDeliveryQueues } from '../support/delivery-queues.ts';
import { type CountingClient, type DynamoEndpoint, startDynalite, startMoto } from '../support/dynamodb.ts';
import { formEvent, httpEvent, sendEvent } from './events.ts';
import { type Harness, startHarness } from './harness.ts';

const ORIGIN = 'https://www.example.com';
const config = {
  send: { allowedRecipients: ['*@example.com'] },
  forms: {
    queued: {
      to: 'team@example.com',
      subject: 'Contact: {{name}}',
      fields: { name: { required: true }, message: {} },
      allowedOrigins: [ORIGIN],
      delivery: 'queue',
    },
  },
};

// biome-ignore lint/suspicious/noExplicitAny: reading response JSON in assertions
const bodyOf = (r: HttpResult) => JSON.parse(String(r.body)) as Record<string, any>;

/** smtp-server's onData: captures like test/support/smtp-server.ts; `holdNext` never answers the next final dot. */
const data = {
  holdNext: false,
  onData(harness: () => Harness): NonNullable<SMTPServerOptions['onData']> {
    return (stream, session, cb) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const h = harness();
        h.srv.messages.push({
          envelope: { from: '', to: session.envelope.rcptTo.map((r) => r.address) },
          raw: Buffer.concat(chunks),
          secure: session.secure,
          mailParams: {},
          ehlo: session.hostNameAppearsAs,
        });
        if (data.holdNext) {
          data.holdNext = false;
          return; // the client's deadline ends the session: the message is in, the client cannot know
        }
        cb(null, `Ok: queued as Q${h.srv.messages.length}`);
      });
    };
  },
};

describe.each([
  ['dynalite', startDynalite],
  ['moto_server', startMoto],
] as const)('queued delivery, exactly once, against %s', (_name, start) => {
  let ddb: DynamoEndpoint;
  let client: CountingClient;
  let q: DeliveryQueues;
  let h: Harness;
  const arrivals = (id: string) => h.srv.messages.filter((m) => messageIdOf(m.raw) === id);
  const post = async (fields: Record<string, string>) =>
    (await h.invoke(
      formEvent('queued', {
        headers: { 'content-type': 'application/json', origin: ORIGIN, 'sec-fetch-mode': 'cors' },
        body: JSON.stringify(fields),
      }),
    )) as HttpResult;
  const status = async (id: string) => {
    const path = `/messages/${encodeURIComponent(id)}`;
    const res = (await h.invoke(httpEvent({ method: 'GET', path, iam: true }))) as HttpResult;
    expect(res.statusCode).toBe(200);
    return bodyOf(res);
  };
  const consume = async (event: SQSEvent, timeoutMs?: number) =>
    (await h.invoke(event, timeoutMs)) as SQSBatchResponse;
  const receiveOne = async () => {
    const event = await q.receiveEvent();
    expect(event.Records).toHaveLength(1);
    return event;
  };

  beforeAll(async () => {
    ddb = await start();
    await ddb.createTable('send-records');
    client = ddb.client();
    q = await startDeliveryQueues({ maxReceives: 3 });
    h = await startHarness({
      config,
      env: q.env,
      records: new DynamoSendRecords({ tableName: 'send-records', client }),
      smtp: {
        extra: {
          onData: data.onData(() => h),
          onRcptTo(address, _session, cb) {
            if (address.address.startsWith('reject')) {
              cb(Object.assign(new Error('5.1.1 No such user'), { responseCode: 550 }));
            } else cb();
          },
        },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await q?.close();
    client?.destroy();
    await ddb?.close();
  });
  beforeEach(async () => {
    data.holdNext = false;
    h.srv.messages.length = 0;
    h.logs.length = 0;
  });

  it('queued → sent: the status follows the message; a repeat post and a redelivered record send nothing more', async () => {
    const fields = { name: 'Ana', message: `queued ${Date.now()}` };
    const first = await post(fields);
    expect(first.statusCode).toBe(202);
    const { messageId } = bodyOf(first);
    expect(await status(messageId)).toMatchObject({ state: 'queued', origin: 'http_form' });

    // A double submit: answered as the first, nothing queued twice.
    const repeat = await post(fields);
    expect(repeat.statusCode).toBe(202);
    expect(bodyOf(repeat)).toMatchObject({ status: 'queued', messageId });
    expect(q.pending()).toBe(1);

    const event = await receiveOne();
    expect((await consume(event)).batchItemFailures).toEqual([]);
    expect(arrivals(messageId)).toHaveLength(1);
    const sent = await status(messageId);
    expect(sent).toMatchObject({ state: 'sent', origin: 'queue', reply: { code: 250, queueId: 'Q1' } });
    expect(sent.accepted).toEqual([{ address: 'team@example.com', code: 250 }]);

    // SQS hands the same record over again (its delete was lost, or the visibility timeout ran out).
    expect((await consume(event)).batchItemFailures).toEqual([]);
    expect(arrivals(messageId)).toHaveLength(1);
    expect(h.logs.filter((l) => l.disposition === 'sent')).toHaveLength(2);
  });

  it('two consumers handed the same record at once: one mail', async () => {
    const res = (await h.invoke(
      sendEvent({ to: 'team@example.com', subject: 'Twice', text: 'once' }, { prefer: 'respond-async' }),
    )) as HttpResult;
    expect(res.statusCode).toBe(202);
    const { messageId } = bodyOf(res);
    const event = await receiveOne();
    const [a, b] = await Promise.all([consume(event), consume(event)]);
    expect(arrivals(messageId)).toHaveLength(1);
    // The one that found the other's claim lists the record (SQS tries it later, and then finds it sent).
    const listed = [...a.batchItemFailures, ...b.batchItemFailures];
    expect(listed.length).toBeLessThanOrEqual(1);
    if (listed.length === 1) {
      expect((await consume(event)).batchItemFailures).toEqual([]);
      expect(arrivals(messageId)).toHaveLength(1);
    }
    expect(await status(messageId)).toMatchObject({ state: 'sent' });
  });

  it('a refused message: dead-lettered at once, status rejected', async () => {
    const dlqBefore = q.deadLettered();
    const res = (await h.invoke(
      sendEvent({ to: 'reject-me@example.com', subject: 'No', text: 'no' }, { prefer: 'respond-async' }),
    )) as HttpResult;
    expect(res.statusCode).toBe(202);
    const { messageId } = bodyOf(res);
    expect(await status(messageId)).toMatchObject({ state: 'queued', origin: 'http_send' });
    expect((await consume(await receiveOne())).batchItemFailures).toEqual([]);
    expect(q.deadLettered()).toBe(dlqBefore + 1);
    const s = await status(messageId);
    expect(s).toMatchObject({ state: 'rejected', error: { code: 'smtp_rejected', smtp: { code: 550 } } });
  });

  it('a batch message the server refused before its end of data: its Message-ID has the status rejected', async () => {
    const batch = {
      messages: [
        { to: 'team@example.com', subject: 'One', text: 'one' },
        { to: 'reject-two@example.com', subject: 'Two', text: 'two' },
      ],
    };
    const res = (await h.invoke(sendEvent(batch))) as HttpResult;
    expect(res.statusCode).toBe(207);
    const [one, two] = bodyOf(res).results;
    expect(one).toMatchObject({ status: 'accepted' });
    expect(two).toMatchObject({ status: 'rejected', error: { code: 'smtp_rejected' } });
    expect(await status(one.messageId)).toMatchObject({ state: 'sent', origin: 'http_send' });
    expect(await status(two.messageId)).toMatchObject({
      state: 'rejected',
      error: { code: 'smtp_rejected', smtp: { code: 550 } },
    });
    expect(arrivals(two.messageId)).toHaveLength(0);
  });

  it('the final dot unanswered: unknown, and the redelivered record is never sent again', async () => {
    const res = (await h.invoke(
      sendEvent({ to: 'team@example.com', subject: 'Held', text: 'held' }, { prefer: 'respond-async' }),
    )) as HttpResult;
    const { messageId } = bodyOf(res);
    const event = await receiveOne();
    data.holdNext = true;
    // A 3 s budget: the deadline (1.5 s before its end) ends the session while the server holds its reply.
    expect((await consume(event, 3000)).batchItemFailures).toEqual([]);
    expect(arrivals(messageId)).toHaveLength(1);
    expect(h.logs.find((l) => l.disposition === 'unknown')).toMatchObject({ messageId });
    expect(await status(messageId)).toMatchObject({ state: 'unknown' });
    expect((await consume(event)).batchItemFailures).toEqual([]);
    expect(arrivals(messageId)).toHaveLength(1);
    expect(h.logs.filter((l) => l.disposition === 'unknown')).toHaveLength(2);
  });
});
