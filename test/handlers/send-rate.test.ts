/**
 * `delivery.maxPerSecond`: one sending rate shared by every instance, kept in the send records table (dynalite and
 * moto_server, our DynamoDB client). Two instances taking at once never get more than the bucket allows; the queue's
 * consumer paces a batch to the rate (arrivals counted and timed at smtp-server); `sync-then-queue` queues what the
 * rate cannot grant now; the limit without the table is a configuration error and nothing is sent.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HttpResult } from '../../functions/handlers/http.ts';
import { marshall, unmarshall } from '../../functions/store/dynamodb.ts';
import { DynamoSendRecords } from '../../functions/store/send-records.ts';
import { SEND_RECORDS_TABLE } from '../../functions/store/table-shape.ts';
import { type DeliveryQueues, messageIdOf, startDeliveryQueues, until } from '../support/delivery-queues.ts';
import { type CountingClient, type DynamoEndpoint, startDynalite, startMoto } from '../support/dynamodb.ts';
import { formEvent, sendEvent } from './events.ts';
import { type Harness, startHarness } from './harness.ts';

const ORIGIN = 'https://www.example.com';
const PER_SECOND = 5;
// biome-ignore lint/suspicious/noExplicitAny: reading response JSON in assertions
const bodyOf = (r: HttpResult) => JSON.parse(String(r.body)) as Record<string, any>;

describe.each([
  ['dynalite', startDynalite],
  ['moto_server', startMoto],
] as const)('delivery.maxPerSecond against %s', (_name, start) => {
  let ddb: DynamoEndpoint;
  let clients: CountingClient[];

  beforeAll(async () => {
    ddb = await start();
    await ddb.createTable('send-records');
    clients = [ddb.client(), ddb.client()];
  }, 60_000);
  afterAll(async () => {
    for (const c of clients ?? []) c.destroy();
    await ddb?.close();
  });

  it('two instances taking at once share one bucket: never more than it holds plus its refill', async () => {
    const rates = clients.map((client) =>
      new DynamoSendRecords({ tableName: 'send-records', client }).sendRate(PER_SECOND),
    );
    const started = Date.now();
    const granted = await Promise.all(
      Array.from({ length: 16 }, (_, i) => rates[i % 2]!.take(1).catch(() => 0)),
    );
    const elapsedS = (Date.now() - started) / 1000;
    const total = granted.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(0);
    // A full bucket (one second's worth) plus what refilled while they raced.
    expect(total).toBeLessThanOrEqual(PER_SECOND + Math.floor(PER_SECOND * elapsedS));
  });

  it('a bucket written by an instance whose clock is ahead: a take never writes its time backwards', async () => {
    // Another instance's host clock 60 s ahead wrote the bucket with one token left. A take here must not write
    // an earlier `at` over it: the next take would refill those 60 s again and grant a full bucket at once.
    const Key = marshall({ [SEND_RECORDS_TABLE.partitionKey]: 'rate#delivery' });
    const ahead = Date.now() + 60_000;
    await clients[0]!.putItem({
      TableName: 'send-records',
      Item: marshall({ [SEND_RECORDS_TABLE.partitionKey]: 'rate#delivery', tokens: 1, at: ahead }),
    });
    const rate = new DynamoSendRecords({ tableName: 'send-records', client: clients[1]! }).sendRate(
      PER_SECOND,
    );
    try {
      expect(await rate.take(5)).toBe(1);
      const item = unmarshall(
        (await clients[0]!.getItem({ TableName: 'send-records', Key, ConsistentRead: true }))!,
      );
      expect(item.at).toBeGreaterThanOrEqual(ahead);
      expect(await rate.take(5)).toBe(0); // empty: nothing refilled before the bucket's own time
    } finally {
      await clients[0]!.deleteItem({ TableName: 'send-records', Key });
    }
  });

  describe('through the handler', () => {
    let q: DeliveryQueues;
    let h: Harness;

    beforeAll(async () => {
      q = await startDeliveryQueues();
      h = await startHarness({
        config: {
          send: { allowedRecipients: ['*@example.com'] },
          delivery: { maxPerSecond: PER_SECOND },
          forms: { contact: { to: 'team@example.com', subject: 'Contact', allowedOrigins: [ORIGIN] } },
        },
        env: q.env,
        records: new DynamoSendRecords({ tableName: 'send-records', client: clients[0]! }),
      });
    }, 60_000);
    afterAll(async () => {
      await q?.close();
      await h?.close();
    });
    beforeEach(async () => {
      await new Promise((r) => setTimeout(r, 1100)); // a full bucket again
      h.srv.messages.length = 0;
    });

    it('the consumer paces a batch of 12 to 5/s: all 12 arrive once, in at least 3 takes from the bucket', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const res = (await h.invoke(
          sendEvent(
            { to: 'team@example.com', subject: `Paced ${i}`, text: `${i}` },
            { prefer: 'respond-async' },
          ),
        )) as HttpResult;
        expect(res.statusCode).toBe(202);
        ids.push(bodyOf(res).messageId);
      }
      await new Promise((r) => setTimeout(r, 1100)); // the 202s took no tokens; the bucket is full
      const arrived = () => h.srv.messages.map((m) => messageIdOf(m.raw)).filter((id) => ids.includes(id));
      const calls = clients[0]!.calls;
      calls.length = 0;
      const mapping = q.consume(h.handler);
      await until(() => arrived().length >= 12, 20_000, 'all 12 arrivals');
      await mapping.stop();
      expect([...arrived()].sort()).toEqual([...ids].sort()); // each once
      // Each take reads the bucket (GetItem; the claims and markers are PutItem/UpdateItem) and grants at most
      // its capacity, 5: 12 messages need at least 3 takes. Unpaced, the consumer reads no bucket at all.
      expect(calls.filter((c) => c === 'GetItem').length).toBeGreaterThanOrEqual(3);
    }, 40_000);

    it('sync-then-queue: what the rate cannot grant now is queued at once (202), not tried', async () => {
      // 15 posts at once against a bucket of 5: their takes race for 5 tokens (plus what refills meanwhile).
      const answers = await Promise.all(
        Array.from({ length: 15 }, async (_, i) => {
          const res = (await h.invoke(
            formEvent('contact', {
              headers: { 'content-type': 'application/json', origin: ORIGIN, 'sec-fetch-mode': 'cors' },
              body: JSON.stringify({ message: `post ${i} ${Date.now()}` }),
            }),
          )) as HttpResult;
          return res.statusCode ?? 0;
        }),
      );
      expect(answers.filter((s) => s !== 200 && s !== 202)).toEqual([]);
      expect(answers.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
      expect(answers.filter((s) => s === 202).length).toBeGreaterThanOrEqual(2);
    });
  });
});

it('maxPerSecond without the send records table: configuration_error, nothing sent', async () => {
  const h = await startHarness({
    config: { send: { allowedRecipients: ['*@example.com'] }, delivery: { maxPerSecond: 5 } },
  });
  try {
    const res = (await h.invoke(
      sendEvent({ to: 'team@example.com', subject: 'x', text: 'x' }),
    )) as HttpResult;
    expect(res.statusCode).toBe(500);
    expect(bodyOf(res).code).toBe('configuration_error');
    expect(h.srv.messages).toHaveLength(0);
  } finally {
    await h.close();
  }
});
