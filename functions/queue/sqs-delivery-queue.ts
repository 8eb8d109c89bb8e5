/**
 * The delivery queue adapter: SQS for the queue, S3 for messages that do not fit an SQS message (256 KiB).
 *
 * Wire format of a queue message body (JSON, validated with valibot when read back):
 * ```json
 * { "kind": "smtp-send.queued-message", "v": 1, "messageId": "<…@…>", "envelope": { "from": "…", "to": ["…"] },
 *   "eightBit": false, "smtpUtf8": false, "reason": "fallback", "origin": "http_form", "formId": "contact",
 *   "queuedAt": 1764620000000,
 *   "content": "<the composed message, base64>"  |  "stored": { "bucket": "…", "key": "queued/….eml" } }
 * ```
 * Environment: `DELIVERY_QUEUE_URL` (the queue), `DELIVERY_BUCKET` (large messages), `DEAD_LETTER_QUEUE_URL`
 * (where a permanently failing queued message goes at once). SQS and S3 are our own clients (./sqs.ts, ./s3.ts:
 * region, credentials and `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL_S3` from the environment; no AWS SDK).
 */
import * as v from 'valibot';
import type { DeliveryQueue, QueuedMessage } from '../send/queue.ts';
import { ORIGINS } from '../send/types.ts';
import { type S3, s3FromEnv } from './s3.ts';
import { type Sqs, sqsFromEnv } from './sqs.ts';

/** `node:crypto` at first use, not at import: it stays out of a cold start's init (docs/benchmarks.md). */
const crypto = () => process.getBuiltinModule('node:crypto');

export const QUEUED_MESSAGE_KIND = 'smtp-send.queued-message';
/** SQS's limit for a message body. */
export const SQS_MESSAGE_LIMIT = 256 * 1024;
/** Bodies above this go through S3 (leaves room for the SDK's and SQS's own accounting). */
export const INLINE_BODY_LIMIT = SQS_MESSAGE_LIMIT - 4 * 1024;
/** Key prefix of stored messages (the bucket's lifecycle rule expires it). */
export const STORED_PREFIX = 'queued/';

const Address = v.pipe(v.string(), v.minLength(3), v.maxLength(998));
const WireSchema = v.strictObject({
  kind: v.literal(QUEUED_MESSAGE_KIND),
  v: v.literal(1),
  messageId: v.pipe(v.string(), v.regex(/^<[^<>\s]{3,995}>$/u)),
  envelope: v.strictObject({
    from: v.pipe(v.string(), v.maxLength(998)),
    to: v.pipe(v.array(Address), v.minLength(1), v.maxLength(1000)),
  }),
  eightBit: v.boolean(),
  smtpUtf8: v.boolean(),
  reason: v.picklist(['queued', 'fallback', 'deferred', 'requeued']),
  origin: v.picklist(ORIGINS),
  formId: v.optional(v.pipe(v.string(), v.maxLength(64))),
  queuedAt: v.pipe(v.number(), v.integer(), v.minValue(0)),
  content: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9+/]*={0,2}$/u))),
  stored: v.optional(
    v.strictObject({
      bucket: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/u)),
      key: v.pipe(v.string(), v.startsWith(STORED_PREFIX), v.maxLength(200)),
    }),
  ),
});
type Wire = v.InferOutput<typeof WireSchema>;

/** Where a queued message's bytes are. */
export type StoredRef = { bucket: string; key: string };

/** A queue message body read back: the message without its bytes, and where they are. */
export type DecodedBody =
  | { ok: true; message: Omit<QueuedMessage, 'content'>; content: Uint8Array | StoredRef }
  | { ok: false; detail: string };

/** Does this SQS body look like one of ours (cheap; `decodeQueuedBody` validates)? */
export function isQueuedBody(body: unknown): boolean {
  return typeof body === 'string' && body.startsWith('{') && body.includes(`"kind":"${QUEUED_MESSAGE_KIND}"`);
}

export function decodeQueuedBody(body: string): DecodedBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { ok: false, detail: 'the body is not JSON' };
  }
  const r = v.safeParse(WireSchema, parsed);
  if (!r.success) {
    const issue = r.issues[0];
    return { ok: false, detail: `not a queued message: ${v.getDotPath(issue) ?? '(root)'} ${issue.message}` };
  }
  const { kind: _k, v: _v, content, stored, ...rest } = r.output;
  if ((content === undefined) === (stored === undefined)) {
    return { ok: false, detail: 'a queued message has either content or stored' };
  }
  const message: Omit<QueuedMessage, 'content'> = { ...rest, envelope: { ...rest.envelope } };
  return { ok: true, message, content: stored ?? Buffer.from(content!, 'base64') };
}

export interface SqsDeliveryQueueOptions {
  queueUrl: string;
  bucket?: string;
  deadLetterQueueUrl?: string;
  sqs?: Sqs;
  s3?: S3;
  /** Where the SQS and S3 clients read region, credentials and endpoints. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Bodies above this go to S3. Default {@link INLINE_BODY_LIMIT}. */
  inlineLimit?: number;
}

export class SqsDeliveryQueue implements DeliveryQueue {
  readonly queueUrl: string;
  readonly bucket: string | undefined;
  readonly deadLetterQueueUrl: string | undefined;
  readonly #inlineLimit: number;
  readonly #env: NodeJS.ProcessEnv;
  #sqs: Sqs | undefined;
  #s3: S3 | undefined;

  constructor(opts: SqsDeliveryQueueOptions) {
    this.queueUrl = opts.queueUrl;
    this.bucket = opts.bucket;
    this.deadLetterQueueUrl = opts.deadLetterQueueUrl;
    this.#inlineLimit = opts.inlineLimit ?? INLINE_BODY_LIMIT;
    this.#env = opts.env ?? process.env;
    this.#sqs = opts.sqs;
    this.#s3 = opts.s3;
  }

  /** Made at the first call: a region or credential missing from the environment is that call's error. */
  #sqsClient(): Sqs {
    this.#sqs ??= sqsFromEnv(this.#env, { maxAttempts: 3, connectTimeoutMs: 2000, requestTimeoutMs: 5000 });
    return this.#sqs;
  }

  #s3Client(): S3 {
    this.#s3 ??= s3FromEnv(this.#env, { maxAttempts: 3, connectTimeoutMs: 2000, requestTimeoutMs: 10_000 });
    return this.#s3;
  }

  async enqueue(m: QueuedMessage): Promise<void> {
    const body = await this.#body(m);
    await this.#sqsClient().sendMessage({ QueueUrl: this.queueUrl, MessageBody: body });
  }

  /** The SQS body for `m`: inline, or (too large for SQS) the bytes in S3 and a pointer. */
  async #body(m: QueuedMessage): Promise<string> {
    const { content, ...rest } = m;
    const base: Omit<Wire, 'content' | 'stored'> = { kind: QUEUED_MESSAGE_KIND, v: 1, ...rest };
    const inline = JSON.stringify({ ...base, content: Buffer.from(content).toString('base64') });
    if (Buffer.byteLength(inline) <= this.#inlineLimit) return inline;
    if (!this.bucket) {
      throw new Error(
        `a queued message of ${content.length} bytes needs DELIVERY_BUCKET (SQS takes 256 KiB)`,
      );
    }
    const digest = crypto()
      .createHash('sha256')
      .update(m.messageId)
      .update(crypto().randomBytes(16))
      .digest('hex');
    const key = `${STORED_PREFIX}${digest.slice(0, 40)}.eml`;
    await this.#s3Client().putObject({
      Bucket: this.bucket,
      Key: key,
      Body: content,
      ContentType: 'message/rfc822',
    });
    return JSON.stringify({ ...base, stored: { bucket: this.bucket, key } });
  }

  /** A decoded body's bytes (read from S3 when stored there). */
  async contentOf(content: Uint8Array | StoredRef): Promise<Uint8Array> {
    if (content instanceof Uint8Array) return content;
    return this.#s3Client().getObject({ Bucket: content.bucket, Key: content.key });
  }

  /** Delete a stored message's bytes (after delivery). A missing object is not an error. */
  async discard(content: Uint8Array | StoredRef): Promise<void> {
    if (content instanceof Uint8Array) return;
    await this.#s3Client().deleteObject({ Bucket: content.bucket, Key: content.key });
  }

  /** Keep a received message hidden for `seconds` (its next try), by receipt handle. */
  async hide(receiptHandle: string, seconds: number): Promise<void> {
    await this.#sqsClient().changeMessageVisibility({
      QueueUrl: this.queueUrl,
      ReceiptHandle: receiptHandle,
      VisibilityTimeout: Math.min(43_200, Math.max(0, Math.round(seconds))),
    });
  }

  /** Move a body to the dead-letter queue as it is (a permanent failure; a human looks at it). */
  async deadLetter(body: string, attributes: Record<string, string>): Promise<boolean> {
    if (!this.deadLetterQueueUrl) return false;
    await this.#sqsClient().sendMessage({
      QueueUrl: this.deadLetterQueueUrl,
      MessageBody: body,
      MessageAttributes: Object.fromEntries(
        Object.entries(attributes).map(([k, val]) => [
          k,
          { DataType: 'String', StringValue: val.slice(0, 256) },
        ]),
      ),
    });
    return true;
  }
}

/** The queue the environment names (`DELIVERY_QUEUE_URL`…), or undefined when there is none. */
export function deliveryQueueFromEnv(env: NodeJS.ProcessEnv = process.env): SqsDeliveryQueue | undefined {
  const text = (name: string) => {
    const value = env[name];
    return typeof value === 'string' ? value.trim() : '';
  };
  const queueUrl = text('DELIVERY_QUEUE_URL');
  if (!queueUrl) return undefined;
  // What this env does not say (a test harness's partial env) comes from the process's, as the SDK read it.
  const opts: SqsDeliveryQueueOptions = {
    queueUrl,
    env: env === process.env ? env : { ...process.env, ...env },
  };
  const bucket = text('DELIVERY_BUCKET');
  if (bucket) opts.bucket = bucket;
  const dlq = text('DEAD_LETTER_QUEUE_URL');
  if (dlq) opts.deadLetterQueueUrl = dlq;
  return new SqsDeliveryQueue(opts);
}
