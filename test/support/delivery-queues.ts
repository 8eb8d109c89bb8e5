/**
 * The delivery queue and its dead-letter queue on the local SQS endpoint (local/sqs-endpoint.ts), the env the
 * handler reads them from, and the local event source mapping that feeds the handler — the deployed wiring, on
 * 127.0.0.1. `AWS_ENDPOINT_URL_SQS` is set for the SDK.
 */
import { request } from 'node:http';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import {
  type EventSourceMapping,
  type EventSourceMappingOptions,
  startEventSourceMapping,
  toSqsRecord,
} from '../../local/event-source-mapping.ts';
import { type SqsEndpoint, startSqsEndpoint } from '../../local/sqs-endpoint.ts';

export interface DeliveryQueues {
  sqs: SqsEndpoint;
  client: SQSClient;
  queueUrl: string;
  deadLetterUrl: string;
  /** DELIVERY_QUEUE_URL, DEAD_LETTER_QUEUE_URL and a fast visibility backoff (1 s … `maxBackoffSeconds`). */
  env: Record<string, string>;
  /** Messages on the delivery queue (visible, delayed or in flight). */
  pending(): number;
  deadLettered(): number;
  /** Receive what is visible (up to 10) and build the SQS event exactly as Lambda's event source mapping does. */
  receiveEvent(): Promise<SQSEvent>;
  consume(
    handler: EventSourceMappingOptions['handler'],
    opts?: Partial<EventSourceMappingOptions>,
  ): EventSourceMapping;
  close(): Promise<void>;
}

export async function startDeliveryQueues(
  opts: { maxReceives?: number; maxBackoffSeconds?: number } = {},
): Promise<DeliveryQueues> {
  const sqs = await startSqsEndpoint();
  process.env.AWS_ENDPOINT_URL_SQS = sqs.url;
  const deadLetterUrl = sqs.createQueue('delivery-dlq');
  const queueUrl = sqs.createQueue('delivery', {
    VisibilityTimeout: '30',
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: sqs.arnOf('delivery-dlq'),
      maxReceiveCount: opts.maxReceives ?? 8,
    }),
  });
  const client = new SQSClient({
    endpoint: sqs.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const mappings: EventSourceMapping[] = [];
  return {
    sqs,
    client,
    queueUrl,
    deadLetterUrl,
    env: {
      DELIVERY_QUEUE_URL: queueUrl,
      DEAD_LETTER_QUEUE_URL: deadLetterUrl,
      DELIVERY_RETRY_BASE_SECONDS: '1',
      DELIVERY_RETRY_MAX_SECONDS: String(opts.maxBackoffSeconds ?? 2),
    },
    pending: () => sqs.messages('delivery').length,
    deadLettered: () => sqs.messages('delivery-dlq').length,
    async receiveEvent() {
      const received = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      return {
        Records: (received.Messages ?? []).map((m) => toSqsRecord(m, sqs.arnOf('delivery'), 'us-east-1')),
      };
    },
    consume(handler, o = {}) {
      const m = startEventSourceMapping({
        sqs: client,
        queueUrl,
        queueArn: sqs.arnOf('delivery'),
        handler,
        batchSize: 25,
        batchingWindowMs: 100,
        ...o,
      });
      mappings.push(m);
      return m;
    },
    async close() {
      await Promise.all(mappings.map((m) => m.stop()));
      client.destroy();
      await sqs.close();
    },
  };
}

/** Poll `check` every 50 ms until it holds; fails after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs: number, what = 'the condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what} did not hold within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The Message-ID header of a raw message. */
export function messageIdOf(raw: Buffer): string {
  return /^Message-ID:\s*(<[^>\r\n]+>)/imu.exec(raw.toString('latin1'))?.[1] ?? '';
}

/** Run `task(0..count-1)` with at most `concurrency` at a time; resolves with the results in order. */
export async function inParallel<T>(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<T>,
): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return out;
}

/**
 * A contact-form post as a browser (urlencoded navigation → 303) or a script (JSON → 202/200 with the Message-ID)
 * sends it. node:http, not fetch: fetch sets `Sec-Fetch-Mode: cors` itself.
 */
export function postContactForm(
  baseUrl: string,
  i: number,
  as: 'browser' | 'script',
): Promise<{ status: number; messageId?: string }> {
  const fields = { name: `Visitor ${i}`, email: `visitor${i}@example.org`, message: `Message number ${i}` };
  const body = as === 'browser' ? new URLSearchParams(fields).toString() : JSON.stringify(fields);
  const headers =
    as === 'browser'
      ? {
          'content-type': 'application/x-www-form-urlencoded',
          'sec-fetch-mode': 'navigate',
          accept: 'text/html',
        }
      : { 'content-type': 'application/json', 'sec-fetch-mode': 'cors', accept: 'application/json' };
  return new Promise((resolve, reject) => {
    const req = request(
      `${baseUrl}/forms/contact`,
      { method: 'POST', headers: { ...headers, origin: baseUrl, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (as === 'browser') return resolve({ status });
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status, messageId: (JSON.parse(text) as { messageId?: string }).messageId });
        });
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}
