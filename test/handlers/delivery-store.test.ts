/**
 * Messages over SQS's 256 KiB go through S3: the queue message carries a pointer, the consumer reads the bytes back
 * and deletes the object after delivery. Checked against two real S3-protocol servers: the npm `s3rver` (what
 * `npm start` runs) and `moto_server`.
 */
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORED_PER_SESSION } from '../../functions/handlers/delivery.ts';
import { startLocalS3 } from '../../local/s3-server.ts';
import { type DeliveryQueues, messageIdOf, startDeliveryQueues } from '../support/delivery-queues.ts';
import { startMotoServer } from '../support/moto-server.ts';
import { sendEvent } from './events.ts';
import { type Harness, startHarness } from './harness.ts';

const BUCKET = 'smtp-send-delivery-test';

interface S3Server {
  url: string;
  close(): Promise<void>;
}

const CREDENTIALS = { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' };

describe.each([
  ['s3rver', () => startLocalS3({ credentials: CREDENTIALS })],
  ['moto_server', startMotoServer],
] as const)('a message over 256 KiB through S3 (%s)', (_name, start) => {
  let s3: S3Server;
  let client: S3Client;
  let q: DeliveryQueues;
  let h: Harness;

  beforeAll(async () => {
    s3 = await start();
    process.env.AWS_ENDPOINT_URL_S3 = s3.url;
    client = new S3Client({
      endpoint: s3.url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: CREDENTIALS,
    });
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
    q = await startDeliveryQueues();
    h = await startHarness({
      config: { send: { allowedRecipients: ['*@example.com'] } },
      env: { ...q.env, DELIVERY_BUCKET: BUCKET },
    });
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    await q?.close();
    client?.destroy();
    await s3?.close();
    delete process.env.AWS_ENDPOINT_URL_S3;
  });

  const objects = async () =>
    (await client.send(new ListObjectsV2Command({ Bucket: BUCKET }))).Contents?.map((o) => o.Key) ?? [];

  it('is queued as a pointer, delivered from the stored bytes, and the object is deleted', async () => {
    const bytes = Buffer.alloc(300 * 1024, 7);
    const res = (await h.invoke(
      sendEvent(
        {
          to: 'big@example.com',
          subject: 'Large',
          text: 'see attachment',
          attachments: [
            {
              filename: 'big.bin',
              contentType: 'application/octet-stream',
              content: bytes.toString('base64'),
            },
          ],
        },
        { prefer: 'respond-async' },
      ),
    )) as APIGatewayProxyStructuredResultV2;
    expect(res.statusCode, String(res.body)).toBe(202);
    const { messageId } = JSON.parse(String(res.body)) as { messageId: string };
    const stored = await objects();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatch(/^queued\/[0-9a-f]{40}\.eml$/u);
    const event = await q.receiveEvent();
    expect(event.Records).toHaveLength(1);
    const body = JSON.parse(event.Records[0]!.body) as Record<string, unknown>;
    expect(body.stored).toEqual({ bucket: BUCKET, key: stored[0] });
    expect(body.content).toBeUndefined();
    expect(Buffer.byteLength(event.Records[0]!.body)).toBeLessThan(2048);
    expect(await h.invoke(event)).toEqual({ batchItemFailures: [] });
    const arrived = h.srv.messages.filter((m) => messageIdOf(m.raw) === messageId);
    expect(arrived).toHaveLength(1);
    const mail = await simpleParser(arrived[0]!.raw);
    expect(Buffer.compare(mail.attachments[0]!.content, bytes)).toBe(0);
    expect(await objects()).toEqual([]);
  });

  it(`a batch of ${STORED_PER_SESSION + 2} stored messages: at most ${STORED_PER_SESSION} in memory per slice, one connection, each arrives once`, async () => {
    const ids: string[] = [];
    for (let i = 0; i < STORED_PER_SESSION + 2; i++) {
      const res = (await h.invoke(
        sendEvent(
          {
            to: `big${i}@example.com`,
            subject: `Large ${i}`,
            text: 'see attachment',
            attachments: [
              {
                filename: 'big.bin',
                contentType: 'application/octet-stream',
                content: Buffer.alloc(260 * 1024, i).toString('base64'),
              },
            ],
          },
          { prefer: 'respond-async' },
        ),
      )) as APIGatewayProxyStructuredResultV2;
      expect(res.statusCode, String(res.body)).toBe(202);
      ids.push((JSON.parse(String(res.body)) as { messageId: string }).messageId);
    }
    expect(await objects()).toHaveLength(ids.length);
    const event = await q.receiveEvent();
    expect(event.Records).toHaveLength(ids.length);
    const connections = h.srv.connections;
    h.logs.length = 0;
    expect(await h.invoke(event)).toEqual({ batchItemFailures: [] });
    for (const id of ids) expect(h.srv.messages.filter((m) => messageIdOf(m.raw) === id)).toHaveLength(1);
    // Two slices (8 + 2) over the kept session: two deliveries, no second connection.
    expect(h.srv.connections - connections).toBeLessThanOrEqual(1);
    const summary = h.logs.find((l) => l.entryPoint === 'sqs_delivery' && l.records === ids.length);
    expect(summary?.attempts).toBe(2);
    expect(await objects()).toEqual([]);
  });
});
