/**
 * The queue consumer's SMTP round trips, counted on the wire: 60 queued messages, handed to the handler by the
 * local event source mapping in batches of 25 (one batch slot), with the send records on (dynalite: each message's
 * claim, and its marker awaited before its BDAT LAST is written). Exim (CHUNKING + PIPELINING) sits behind the
 * latency proxy (0 ms), which counts connections and the client's flights (runs of client bytes after server
 * bytes). One batch = one write of every transaction of the batch: 3 batches over ONE connection, and each batch
 * after the first (which also opens the session) reaches the server as ONE flight — one round trip. Every message
 * arrives exactly once (by Message-ID). Counts only, never wall-clock.
 */
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LatencyProxy, startLatencyProxy } from '../../bench/proxy.ts';
import { createHandler } from '../../functions/handlers/create-handler.ts';
import { compose } from '../../functions/mime/index.ts';
import { SqsDeliveryQueue } from '../../functions/queue/sqs-delivery-queue.ts';
import { DynamoSendRecords } from '../../functions/store/send-records.ts';
import {
  type SecretsManagerEndpoint,
  startSecretsManagerEndpoint,
} from '../../local/secrets-manager-endpoint.ts';
import { type ChunkingServer, startChunkingServer } from '../support/chunking-server.ts';
import { type DeliveryQueues, messageIdOf, startDeliveryQueues, until } from '../support/delivery-queues.ts';
import { type CountingClient, type DynamoEndpoint, startDynalite } from '../support/dynamodb.ts';

const MESSAGES = 60;
const BATCH = 25;

describe('the queue consumer against Exim: one SMTP round trip per batch', () => {
  let exim: ChunkingServer;
  let proxy: LatencyProxy;
  let sm: SecretsManagerEndpoint;
  let q: DeliveryQueues;
  let ddb: DynamoEndpoint;
  let client: CountingClient;
  let handler: ReturnType<typeof createHandler>;

  beforeAll(async () => {
    exim = await startChunkingServer();
    proxy = await startLatencyProxy(exim.port, 0);
    sm = await startSecretsManagerEndpoint({
      secrets: {
        smtp: {
          host: '127.0.0.1',
          port: proxy.port,
          security: 'starttls',
          username: exim.username,
          password: exim.password,
          from: 'noreply@example.com',
          clientName: 'localhost',
          ca: exim.ca,
        },
      },
    });
    process.env.AWS_REGION = 'us-east-1';
    process.env.AWS_ACCESS_KEY_ID = 'AKIDLOCALTEST';
    process.env.AWS_SECRET_ACCESS_KEY = 'local-test-secret';
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.url;
    ddb = await startDynalite();
    await ddb.createTable('send-records');
    client = ddb.client();
    q = await startDeliveryQueues();
    handler = createHandler({
      records: new DynamoSendRecords({ tableName: 'send-records', client }),
      env: { SMTP_SECRET_ID: 'smtp', POWERTOOLS_LOG_LEVEL: 'ERROR', ...q.env },
    });
  }, 60_000);

  afterAll(async () => {
    await q?.close();
    await handler?.close();
    client?.destroy();
    await ddb?.close();
    await sm?.close();
    await proxy?.close();
    await exim?.close();
  });

  it(`${MESSAGES} queued messages in batches of ${BATCH}: 3 batches, 1 connection, 6 + 3 round trips, each once`, async () => {
    const queue = new SqsDeliveryQueue({ queueUrl: q.queueUrl });
    const ids: string[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const c = compose({
        from: 'noreply@example.com',
        to: `rt${i}@example.com`,
        subject: `round trips ${i}`,
        text: `queued message ${i}`,
      });
      ids.push(c.messageId);
      await queue.enqueue({
        messageId: c.messageId,
        envelope: c.envelope,
        content: c.bytes,
        eightBit: false,
        smtpUtf8: false,
        reason: 'queued',
        origin: 'direct_invoke',
        queuedAt: Date.now(),
      });
    }
    proxy.reset();
    const flights: number[] = [];
    const counted = async (event: unknown, context: Context) => {
      const before = proxy.snapshot().clientFlights;
      try {
        return await handler(event, context);
      } finally {
        flights.push(proxy.snapshot().clientFlights - before);
      }
    };
    const esm = q.consume(counted, { maxConcurrency: 1, batchSize: BATCH });
    await until(() => q.pending() === 0, 60_000, 'the delivery queue to drain');
    expect(esm.invocations).toBe(3);
    expect(proxy.snapshot().connections).toHaveLength(1);
    // The first batch also opens the session (EHLO, STARTTLS, TLS, EHLO; AUTH PLAIN rides with the batch).
    expect(flights.slice(1)).toEqual([1, 1]);
    const arrived = (await exim.waitForMessages(MESSAGES)).map((m) => messageIdOf(m.raw));
    expect(arrived.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
    expect(q.deadLettered()).toBe(0);
    // The send records were in play: a claim per message, and the marker before each end of data.
    expect(client.calls.filter((c) => c === 'PutItem').length).toBeGreaterThanOrEqual(MESSAGES);
    expect(client.calls.filter((c) => c === 'UpdateItem').length).toBeGreaterThanOrEqual(MESSAGES);
  }, 90_000);
});
