/**
 * SQS: the delivery queue's consumer. The event source mapping (maximum concurrency `delivery.maxConnections`)
 * hands it batches of queued messages (functions/queue/sqs-delivery-queue.ts); ONE batch is delivered over ONE SMTP
 * session (the use case's `deliverComposed`: PIPELINING, CHUNKING, warm reuse), and each record's fate is a value:
 *
 * - accepted → deleted (its S3 copy too); recipients refused with 4xx are re-queued for them only (`deferred`,
 *   logged with `recipient_deferred` and how long ago the message was first queued);
 * - not sent, transient (the server is down, 421/450/451/452/454, SES's throttling, the deadline) → listed in
 *   `batchItemFailures` and hidden for an exponentially growing, jittered time (`ChangeMessageVisibility`), so a
 *   throttling provider gets room; after `delivery.maxReceives` receives SQS moves it to the dead-letter queue;
 * - not sent, permanent (5xx, a configuration error) → moved to the dead-letter queue at once (when the record came
 *   from the delivery queue and the DLQ is known; else listed, and the redrive policy moves it);
 * - unknown (the connection broke after the data) → deleted, NEVER retried, logged at ERROR `delivery_unknown`;
 * - a body that is not a queued message → listed (the redrive policy parks it).
 * With the send records, each queued message is delivered AT MOST ONCE however often SQS hands it over
 * (`deliverQueuedOnce`): a repeat of a delivered one is deleted unsent, one whose consumer died after the final dot
 * is `unknown` (deleted, never resent), and its status (`GET /messages/{id}`) follows it from `queued` on.
 * The handler never throws (a throw would return the whole batch, delivered records included).
 */
import type { SQSBatchItemFailure, SQSRecord } from 'aws-lambda';
import type { ComposedMessage } from '../mime/types.ts';
import {
  type DecodedBody,
  decodeQueuedBody,
  type SqsDeliveryQueue,
  type StoredRef,
} from '../queue/sqs-delivery-queue.ts';
import { deadlineFrom, deferRecipients, type Ended } from '../send/deliver.ts';
import { deliverQueuedOnce } from '../send/idempotency.ts';
import { type QueuedMessage, type VisibilityPolicy, visibilityBackoff } from '../send/queue.ts';
import { paced, secondsFor } from '../send/rate.ts';
import { DEFAULT_RETRY } from '../send/retry.ts';
import {
  type Answered,
  type Invocation,
  type InvocationOutcome,
  newInvocationLog,
  writeRecordLine,
} from './log.ts';
import type { Runtime } from './runtime.ts';

/** A record read back: its queued message, where its bytes live, and the SQS facts about it. */
interface Job {
  record: SQSRecord;
  message: QueuedMessage;
  stored: Uint8Array | StoredRef;
  receiveCount: number;
}

export type DeliveryDisposition = 'sent' | 'deferred' | 'unknown' | 'retry' | 'dead_letter' | 'park';

/** `DELIVERY_RETRY_BASE_SECONDS` / `DELIVERY_RETRY_MAX_SECONDS`: the visibility backoff (default 30 s … 15 min). */
export function visibilityPolicyFromEnv(env: NodeJS.ProcessEnv): VisibilityPolicy {
  const num = (raw: string | undefined, fallback: number) => {
    const n = Number(raw);
    return raw && Number.isFinite(n) && n >= 0 ? n : fallback;
  };
  return {
    baseSeconds: num(env.DELIVERY_RETRY_BASE_SECONDS, 30),
    maxSeconds: num(env.DELIVERY_RETRY_MAX_SECONDS, 900),
  };
}

export async function handleDeliveryBatch(
  records: SQSRecord[],
  inv: Invocation,
): Promise<Answered<SQSBatchItemFailure[]>> {
  const { rt } = inv;
  const queue = rt.queue;
  const failures: SQSBatchItemFailure[] = [];
  const counts: Record<DeliveryDisposition, number> = {
    sent: 0,
    deferred: 0,
    unknown: 0,
    retry: 0,
    dead_letter: 0,
    park: 0,
  };
  const note = (record: SQSRecord, d: DeliveryDisposition, fields: Record<string, unknown> = {}) => {
    counts[d]++;
    const listed = d === 'retry' || d === 'park';
    if (listed && record.messageId) failures.push({ itemIdentifier: record.messageId });
    const rec = newInvocationLog('sqs_delivery');
    if (inv.requestId) rec.requestId = inv.requestId;
    rec.outcome = d === 'sent' || d === 'deferred' ? 'sent' : d === 'unknown' ? 'unknown' : 'failed';
    writeRecordLine(rt.logger, rec, { sqsMessageId: record.messageId, disposition: d, ...fields });
  };
  const jobs: Job[] = [];
  for (const record of records) {
    const decoded: DecodedBody = queue
      ? decodeQueuedBody(record.body ?? '')
      : { ok: false, detail: 'no delivery queue is configured (DELIVERY_QUEUE_URL)' };
    if (!decoded.ok) {
      note(record, 'park', { code: 'queue_malformed_body', detail: decoded.detail });
      continue;
    }
    jobs.push({
      record,
      message: { ...decoded.message, content: new Uint8Array() },
      stored: decoded.content,
      receiveCount: Number(record.attributes?.ApproximateReceiveCount) || 1,
    });
  }
  if (queue && jobs.length > 0) await deliverJobs(jobs, queue, inv, note);
  const outcome: InvocationOutcome = {
    messages: records.length,
    counts: { records: records.length, ...counts, batchItemFailures: failures.length },
    outcome: batchOutcome(counts, failures.length),
  };
  if (counts.unknown > 0) outcome.code = 'delivery_unknown';
  return { response: failures, outcome };
}

function batchOutcome(
  counts: Record<DeliveryDisposition, number>,
  failures: number,
): InvocationOutcome['outcome'] {
  return counts.unknown > 0
    ? 'unknown'
    : failures === 0
      ? 'sent'
      : counts.sent + counts.deferred > 0
        ? 'partial'
        : 'failed';
}

type Note = (record: SQSRecord, d: DeliveryDisposition, fields?: Record<string, unknown>) => void;

async function deliverJobs(jobs: Job[], queue: SqsDeliveryQueue, inv: Invocation, note: Note): Promise<void> {
  const { rt } = inv;
  // One attempt per receive: the queue is the retry (a throttling server is not hammered within one invocation).
  const deps = { ...rt.deps, retry: { ...DEFAULT_RETRY, maxAttempts: 1 } };
  const deadline = deadlineFrom(inv.remainingMs());
  const policy = visibilityPolicyFromEnv(rt.env);
  const waiting: Job[] = [];
  for (const slice of sessionSlices(jobs)) {
    // Once the rate (or the time) ran out, what follows waits too.
    if (waiting.length > 0) waiting.push(...slice);
    else waiting.push(...(await deliverSlice(slice, queue, inv, note, { deps, deadline, policy })));
    for (const job of slice) job.message.content = new Uint8Array(); // its bytes are not held any longer
  }
  const seconds = secondsFor(waiting.length, rt.deps.rate?.perSecond ?? 1);
  await Promise.all(
    waiting.map(async (job) => {
      if (sourceName(job.record) === queueName(queue.queueUrl)) {
        await queue.hide(job.record.receiptHandle, seconds).catch(() => {});
      }
      note(job.record, 'retry', {
        messageId: job.message.messageId,
        code: 'rate_limited',
        retryInSeconds: seconds,
      });
    }),
  );
}

/**
 * Messages whose bytes are stored in S3 (over ~252 KiB each, up to the composed size limit) held in memory at once:
 * a batch with more is delivered in slices, one after another over the kept SMTP session (one more round trip
 * each), so a batch of large messages never sits whole in the function's memory.
 */
export const STORED_PER_SESSION = 8;

/** `jobs` in order, cut so that no slice holds more than `STORED_PER_SESSION` stored bodies. */
function sessionSlices(jobs: Job[]): Job[][] {
  const out: Job[][] = [[]];
  let stored = 0;
  for (const job of jobs) {
    const inS3 = !(job.stored instanceof Uint8Array);
    if (inS3 && stored === STORED_PER_SESSION) {
      out.push([]);
      stored = 0;
    }
    out.at(-1)!.push(job);
    if (inS3) stored++;
  }
  return out;
}

/**
 * One slice: its stored bytes are read (a read that fails leaves that record for a later try), then delivered in
 * the chunks `delivery.maxPerSecond` grants, one session per chunk. Resolves with what the rate never granted.
 */
async function deliverSlice(
  slice: Job[],
  queue: SqsDeliveryQueue,
  inv: Invocation,
  note: Note,
  at: { deps: Runtime['deps']; deadline: number; policy: VisibilityPolicy },
): Promise<Job[]> {
  const { rt } = inv;
  const ready: Job[] = [];
  await Promise.all(
    slice.map(async (job) => {
      try {
        job.message.content = await queue.contentOf(job.stored);
        ready.push(job);
      } catch (e) {
        note(job.record, 'retry', { code: 'queue_store_unavailable', error: (e as Error).name });
      }
    }),
  );
  ready.sort((a, b) => slice.indexOf(a) - slice.indexOf(b));
  return paced(ready, rt.deps.rate, at.deadline - PACING_MARGIN_MS, async (chunk) => {
    const ended = await deliverQueuedOnce(
      chunk.map((j) => ({
        message: composedOf(j.message),
        attempt: j.receiveCount,
        lastTry: j.receiveCount >= rt.delivery.maxReceives,
      })),
      at.deps,
      rt.idempotency,
      { deadline: at.deadline, trace: inv.trace, origin: 'queue' },
    );
    await Promise.all(chunk.map((job, k) => settleJob(job, ended[k]!, queue, rt, at.policy, note)));
  });
}

/** Pacing stops this long before the deadline: the last chunk still needs its SMTP session. */
const PACING_MARGIN_MS = 3000;

/** One record's fate after the attempt loop (see the top of this file). Never throws. */
async function settleJob(
  job: Job,
  ended: Ended,
  queue: SqsDeliveryQueue,
  rt: Runtime,
  policy: VisibilityPolicy,
  note: Note,
): Promise<void> {
  const { record, message } = job;
  const fields: Record<string, unknown> = {
    messageId: message.messageId,
    reason: message.reason,
    queuedBy: message.origin,
    formId: message.formId,
    receiveCount: job.receiveCount,
    queuedForSeconds: Math.round((Date.now() - message.queuedAt) / 1000),
  };
  try {
    if (ended.status === 'accepted') {
      const result = await deferRecipients(ended.result, message, rt.deps, {});
      await queue.discard(job.stored).catch(() => {});
      if (result.deferred?.length) {
        return note(record, 'deferred', {
          ...fields,
          code: 'recipient_deferred',
          deferred: result.deferred.length,
        });
      }
      return note(record, 'sent', { ...fields, rejected: result.rejected.length || undefined });
    }
    const smtp = {
      code: ended.error.code,
      smtpCode: ended.error.smtp?.code,
      smtpPhase: ended.error.smtp?.phase,
    };
    if (ended.status === 'unknown') return note(record, 'unknown', { ...fields, ...smtp });
    // A record redriven from the dead-letter queue is left to that queue's own visibility and redrive policy.
    const fromDeliveryQueue = sourceName(record) === queueName(queue.queueUrl);
    if (ended.status === 'not_sent' && ended.error.transient) {
      const seconds = visibilityBackoff(job.receiveCount, policy);
      if (fromDeliveryQueue) await queue.hide(record.receiptHandle, seconds).catch(() => {});
      return note(record, 'retry', { ...fields, ...smtp, retryInSeconds: seconds });
    }
    // Permanent: to the dead-letter queue now (from the delivery queue only; a DLQ record is parked by its policy).
    if (fromDeliveryQueue && (await queue.deadLetter(record.body, { code: ended.error.code }))) {
      return note(record, 'dead_letter', { ...fields, ...smtp });
    }
    return note(record, 'park', { ...fields, ...smtp });
  } catch (e) {
    rt.logger.error('queued message settlement failed', {
      error: e as Error,
      sqsMessageId: record.messageId,
    });
    return note(record, 'retry', { ...fields, code: 'internal_error' });
  }
}

function composedOf(m: QueuedMessage): ComposedMessage {
  return {
    bytes: m.content,
    messageId: m.messageId,
    envelope: m.envelope,
    eightBit: m.eightBit,
    smtpUtf8: m.smtpUtf8,
    size: m.content.length,
    // The header fields as composed are only read by tests of the composer; the bytes carry them.
    headers: [],
  };
}

function sourceName(record: SQSRecord): string {
  const arn = record.eventSourceARN ?? '';
  return arn.slice(arn.lastIndexOf(':') + 1);
}

function queueName(url: string): string {
  return url.slice(url.lastIndexOf('/') + 1);
}
