/**
 * A local Lambda SQS event source mapping: polls a queue with the real `@aws-sdk/client-sqs` and hands batches to
 * the handler in the exact event shape Lambda uses (`{ Records: [{ messageId, receiptHandle, body, attributes,
 * messageAttributes, md5OfBody, eventSource: "aws:sqs", eventSourceARN, awsRegion }] }`), with what the deployed
 * mapping does:
 * - at most `maxConcurrency` batches in flight (Lambda's `ScalingConfig.MaximumConcurrency`);
 * - batches of up to `batchSize` gathered for at most `batchingWindowMs`;
 * - `ReportBatchItemFailures`: the records listed in `batchItemFailures` stay on the queue (they come back when
 *   their visibility timeout runs out, and the queue's redrive policy counts their receives); all others are
 *   deleted. A thrown error, a timeout, or an `itemIdentifier` that is not in the batch fails the whole batch.
 *
 * ```ts
 * const esm = startEventSourceMapping({ queueUrl, queueArn, handler, maxConcurrency: 2 });
 * await esm.drained();   // nothing visible and nothing in flight
 * await esm.stop();
 * ```
 */

import { setMaxListeners } from 'node:events';
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import type { LambdaFunction } from '../functions/handlers/create-handler.ts';
import { createLambdaContext, DEFAULT_BUDGET_MS } from './lambda-context.ts';

export interface EventSourceMappingOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  /**
   * The function: one handler, or a factory called once per concurrent batch slot — Lambda runs each concurrent
   * batch in its own execution environment (its own warm SMTP session).
   */
  handler: LambdaFunction | (() => LambdaFunction);
  region?: string;
  /** Default 2 (the smallest value Lambda accepts). */
  maxConcurrency?: number;
  /** Default 10. */
  batchSize?: number;
  /** Default 500 ms. */
  batchingWindowMs?: number;
  /** The function timeout each invocation gets. Default 30 s. */
  budgetMs?: number;
  log?: (line: string) => void;
}

export interface EventSourceMapping {
  /** Batches handed to the handler so far. */
  readonly invocations: number;
  /** Resolves when a poll found nothing and no batch is in flight (bounded by `timeoutMs`). */
  drained(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** One SQS message as Lambda hands it to the function. */
export function toSqsRecord(m: Message, queueArn: string, region: string): SQSRecord {
  const attrs = m.Attributes ?? {};
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attrs.ApproximateReceiveCount ?? '1',
      SentTimestamp: attrs.SentTimestamp ?? String(Date.now()),
      SenderId: attrs.SenderId ?? 'AIDAIENQZJOLO23YVJ4VO',
      ApproximateFirstReceiveTimestamp: attrs.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([k, a]) => [
        k,
        {
          ...(a.StringValue !== undefined ? { stringValue: a.StringValue } : {}),
          ...(a.BinaryValue !== undefined
            ? { binaryValue: Buffer.from(a.BinaryValue).toString('base64') }
            : {}),
          stringListValues: [],
          binaryListValues: [],
          dataType: a.DataType ?? 'String',
        },
      ]),
    ),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

export function startEventSourceMapping(opts: EventSourceMappingOptions): EventSourceMapping {
  const maxConcurrency = opts.maxConcurrency ?? 2;
  const log = opts.log ?? (() => {});
  const m: Mapping = {
    opts,
    batchSize: opts.batchSize ?? 10,
    windowMs: opts.batchingWindowMs ?? 500,
    region: opts.region ?? 'us-east-1',
    log,
    abort: new AbortController(),
    stopped: false,
  };
  // Every ReceiveMessage of every slot listens on this one signal at once (up to 10 per batch being gathered):
  // more than Node's default of 10 is expected, not a leak (each call removes its listener when it ends).
  setMaxListeners(Math.max(10, maxConcurrency * 11), m.abort.signal);
  let inFlight = 0;
  let invocations = 0;
  let idle = false;
  const idleWaiters = new Set<() => void>();

  async function poller(): Promise<void> {
    const handler = isFactory(opts.handler) ? opts.handler() : opts.handler;
    while (!m.stopped) {
      let batch: Message[] = [];
      try {
        batch = await gather(m);
      } catch (e) {
        if (m.stopped) return;
        log(`event source mapping: receive failed (${(e as Error).name})`);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (batch.length === 0) {
        idle = inFlight === 0;
        if (idle) for (const w of [...idleWaiters]) w();
        continue;
      }
      idle = false;
      inFlight++;
      invocations++;
      try {
        await invoke(m, handler, batch);
      } finally {
        inFlight--;
      }
    }
  }

  // One poller per concurrent batch: at most maxConcurrency handler invocations at a time.
  const pollers = Array.from({ length: maxConcurrency }, () => poller());

  return {
    get invocations() {
      return invocations;
    },
    drained(timeoutMs = 60_000) {
      idle = false;
      return waitForIdle(idleWaiters, timeoutMs);
    },
    async stop() {
      m.stopped = true;
      m.abort.abort();
      await Promise.allSettled(pollers);
    },
  };
}

/** A mapping's settings and its stop state, shared by its pollers. */
interface Mapping {
  opts: EventSourceMappingOptions;
  batchSize: number;
  windowMs: number;
  region: string;
  log: (line: string) => void;
  abort: AbortController;
  stopped: boolean;
}

/** Resolves at the next idle signal (a waiter called); rejects after `timeoutMs`. */
function waitForIdle(idleWaiters: Set<() => void>, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      idleWaiters.delete(done);
      reject(new Error(`the queue did not drain within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      idleWaiters.delete(done);
      resolve();
    };
    idleWaiters.add(done);
  });
}

async function receive(m: Mapping, max: number, waitSeconds: number): Promise<Message[]> {
  const out = await m.opts.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: m.opts.queueUrl,
      MaxNumberOfMessages: Math.min(10, max),
      WaitTimeSeconds: waitSeconds,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
    { abortSignal: m.abort.signal },
  );
  return out.Messages ?? [];
}

/**
 * Up to `batchSize` messages: a long poll for the first, then the batching window for the rest — as many
 * ReceiveMessage calls at once as the rest needs (SQS hands out at most 10 per call), not one after another.
 */
async function gather(m: Mapping): Promise<Message[]> {
  const { batchSize } = m;
  const batch = await receive(m, batchSize, 1);
  const until = Date.now() + m.windowMs;
  while (batch.length > 0 && batch.length < batchSize && Date.now() < until && !m.stopped) {
    const wanted = batchSize - batch.length;
    const calls = Array.from({ length: Math.ceil(wanted / 10) }, (_, i) =>
      receive(m, Math.min(10, wanted - i * 10), 0),
    );
    const more = (await Promise.all(calls)).flat();
    if (more.length === 0) await new Promise((r) => setTimeout(r, 50));
    batch.push(...more);
  }
  return batch;
}

/** One invocation: the records it listed stay on the queue, the others are deleted; a failure keeps them all. */
async function invoke(m: Mapping, handler: LambdaFunction, batch: Message[]): Promise<void> {
  const { opts, log } = m;
  const event: SQSEvent = { Records: batch.map((msg) => toSqsRecord(msg, opts.queueArn, m.region)) };
  let keep: Set<string>;
  try {
    const budget = opts.budgetMs ?? DEFAULT_BUDGET_MS;
    const result = (await Promise.race([
      handler(event, createLambdaContext(budget, m.region)),
      new Promise((_, reject) => setTimeout(() => reject(new Error('Task timed out')), budget).unref()),
    ])) as { batchItemFailures?: Array<{ itemIdentifier?: string }> } | undefined;
    const failures = result?.batchItemFailures ?? [];
    const ids = new Set(batch.map((msg) => msg.MessageId!));
    if (failures.some((f) => !f.itemIdentifier || !ids.has(f.itemIdentifier))) {
      throw new Error('a batchItemFailures itemIdentifier is not a record of this batch');
    }
    keep = new Set(failures.map((f) => f.itemIdentifier!));
  } catch (e) {
    log(`event source mapping: the batch of ${batch.length} failed (${(e as Error).message}); all retried`);
    return;
  }
  await deleteDone(
    m,
    batch.filter((msg) => !keep.has(msg.MessageId!)),
  );
  log(`event source mapping: ${batch.length} record(s), ${keep.size} left on the queue`);
}

/** DeleteMessageBatch takes 10 entries: the chunks go at once. */
async function deleteDone(m: Mapping, done: Message[]): Promise<void> {
  const chunks = Array.from({ length: Math.ceil(done.length / 10) }, (_, i) =>
    done.slice(i * 10, i * 10 + 10),
  );
  await Promise.all(
    chunks.map(async (chunk) => {
      const out = await m.opts.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: m.opts.queueUrl,
          Entries: chunk.map((msg, j) => ({ Id: String(j), ReceiptHandle: msg.ReceiptHandle! })),
        }),
      );
      for (const f of out.Failed ?? []) m.log(`event source mapping: delete failed (${f.Code})`);
    }),
  );
}

function isFactory(h: EventSourceMappingOptions['handler']): h is () => LambdaFunction {
  return h.length === 0;
}
