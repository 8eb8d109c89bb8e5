/**
 * The delivery queue of `npm start`, as deployed but on 127.0.0.1: the local SQS endpoint with the delivery queue
 * and its dead-letter queue (redrive after `maxReceives`), an S3-protocol server (the npm `s3rver`, files in a
 * temporary directory) for messages over 256 KiB, and the event source mapping that hands the batches to the
 * function — one handler instance per concurrent batch, as Lambda runs one execution environment per batch, so at
 * most `maxConnections` SMTP sessions.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import type { LambdaFunction } from '../functions/handlers/create-handler.ts';
import { decodeQueuedBody } from '../functions/queue/sqs-delivery-queue.ts';
import { type EventSourceMapping, startEventSourceMapping } from './event-source-mapping.ts';
import { startLocalS3 } from './s3-server.ts';
import { type SqsEndpoint, startSqsEndpoint } from './sqs-endpoint.ts';

export const LOCAL_DELIVERY_QUEUE = 'smtp-send-delivery';
export const LOCAL_DEAD_LETTER_QUEUE = 'smtp-send-dead-letter';
export const LOCAL_DELIVERY_BUCKET = 'smtp-send-delivery-local';

export interface LocalDeliveryOptions {
  maxReceives: number;
  maxConnections: number;
  batchSize: number;
  /** Visibility backoff after a transient failure (`DELIVERY_RETRY_BASE_SECONDS` / `_MAX_SECONDS`). */
  retryBaseSeconds?: number;
  retryMaxSeconds?: number;
  /** The key pair the function signs with (the S3-protocol server checks signatures). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  log?: (line: string) => void;
}

/** One queued message as the inbox page lists it. */
export interface QueuedSummary {
  sqsMessageId: string;
  messageId: string;
  reason: string;
  to: string[];
  receiveCount: number;
  queuedAt: string;
  /** `waiting` (visible), `in flight` (being delivered or hidden until its next try), `dead-lettered`. */
  state: 'waiting' | 'in flight' | 'dead-lettered';
  nextTryAt?: string;
}

export interface LocalDelivery {
  sqs: SqsEndpoint;
  s3Url: string;
  /** The environment the function reads the queue and the bucket from. */
  env: Record<string, string>;
  /** Start feeding the queue to new handler instances (`newInstance` is called once per concurrent batch slot). */
  consume(handler: LambdaFunction | (() => LambdaFunction)): EventSourceMapping;
  queued(): QueuedSummary[];
  close(): Promise<void>;
}

export async function startLocalDelivery(opts: LocalDeliveryOptions): Promise<LocalDelivery> {
  const sqs = await startSqsEndpoint();
  const dlqUrl = sqs.createQueue(LOCAL_DEAD_LETTER_QUEUE, { MessageRetentionPeriod: '1209600' });
  const queueUrl = sqs.createQueue(LOCAL_DELIVERY_QUEUE, {
    VisibilityTimeout: '180',
    MessageRetentionPeriod: '1209600',
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: sqs.arnOf(LOCAL_DEAD_LETTER_QUEUE),
      maxReceiveCount: opts.maxReceives,
    }),
  });
  const s3 = await startLocalS3({ credentials: opts.credentials, buckets: [LOCAL_DELIVERY_BUCKET] });
  const s3Url = s3.url;
  const client = new SQSClient({ endpoint: sqs.url, region: 'us-east-1', credentials: opts.credentials });
  const mappings: EventSourceMapping[] = [];
  return {
    sqs,
    s3Url,
    env: {
      AWS_ENDPOINT_URL_SQS: sqs.url,
      AWS_ENDPOINT_URL_S3: s3Url,
      DELIVERY_QUEUE_URL: queueUrl,
      DEAD_LETTER_QUEUE_URL: dlqUrl,
      DELIVERY_BUCKET: LOCAL_DELIVERY_BUCKET,
      DELIVERY_RETRY_BASE_SECONDS: String(opts.retryBaseSeconds ?? 5),
      DELIVERY_RETRY_MAX_SECONDS: String(opts.retryMaxSeconds ?? 60),
    },
    consume(handler) {
      const m = startEventSourceMapping({
        sqs: client,
        queueUrl,
        queueArn: sqs.arnOf(LOCAL_DELIVERY_QUEUE),
        handler,
        maxConcurrency: opts.maxConnections,
        batchSize: opts.batchSize,
        batchingWindowMs: 500,
        ...(opts.log ? { log: opts.log } : {}),
      });
      mappings.push(m);
      return m;
    },
    queued: () => [
      ...sqs.messages(LOCAL_DELIVERY_QUEUE).map((m) => summary(m, false)),
      ...sqs.messages(LOCAL_DEAD_LETTER_QUEUE).map((m) => summary(m, true)),
    ],
    async close() {
      await Promise.all(mappings.map((m) => m.stop()));
      client.destroy();
      await sqs.close();
      await s3.close();
    },
  };
}

function summary(m: ReturnType<SqsEndpoint['messages']>[number], dead: boolean): QueuedSummary {
  const decoded = decodeQueuedBody(m.body);
  const now = Date.now();
  const s: QueuedSummary = {
    sqsMessageId: m.messageId,
    messageId: decoded.ok ? decoded.message.messageId : '(not a queued message)',
    reason: decoded.ok ? decoded.message.reason : '',
    to: decoded.ok ? decoded.message.envelope.to : [],
    receiveCount: m.receiveCount,
    queuedAt: new Date(decoded.ok ? decoded.message.queuedAt : m.sentAt).toISOString(),
    state: dead ? 'dead-lettered' : m.visibleAt > now ? 'in flight' : 'waiting',
  };
  if (!dead && m.visibleAt > now) s.nextTryAt = new Date(m.visibleAt).toISOString();
  return s;
}
