/**
 * A small local Amazon SQS endpoint speaking the real wire protocol (AWS JSON 1.0: `POST /` with
 * `X-Amz-Target: AmazonSQS.<Operation>`), so the real `@aws-sdk/client-sqs` works against it unchanged via
 * `AWS_ENDPOINT_URL_SQS=http://127.0.0.1:<port>` (queue URLs point back at this endpoint).
 *
 * Standard queues only, with what the delivery queue relies on: visibility timeout (queue default, per receive, and
 * `ChangeMessageVisibility`), `ApproximateReceiveCount`, per-message `DelaySeconds`, long polling
 * (`WaitTimeSeconds`), and the redrive policy: a message received `maxReceiveCount` times is moved to the
 * dead-letter queue on its next receive, as SQS does. MD5 digests of bodies and message attributes are computed as
 * SQS computes them (the SDK verifies them). Signatures are NOT verified. Errors use AWS's JSON shape
 * (`{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"…"}`, HTTP 400).
 *
 * ```ts
 * const sqs = await startSqsEndpoint();
 * process.env.AWS_ENDPOINT_URL_SQS = sqs.url;
 * const url = sqs.createQueue('delivery', { VisibilityTimeout: '30' });
 * sqs.messages('delivery');           // what is in the queue, visible or not
 * await sqs.close();
 * ```
 * DEV ONLY: in memory; bind to loopback.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isJsonObject } from '../functions/send/request.ts';
import { LocalAwsEndpoint, readJsonObject, sendAwsJson } from './aws-json-http.ts';

export interface SqsEndpointOptions {
  host?: string;
  port?: number;
  region?: string;
  accountId?: string;
  log?: (line: string) => void;
}

interface MessageAttributeValue {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}

export interface StoredMessage {
  messageId: string;
  body: string;
  attributes: Record<string, MessageAttributeValue>;
  sentAt: number;
  visibleAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  receiptHandle?: string;
}

interface StoredQueue {
  name: string;
  url: string;
  arn: string;
  attributes: Record<string, string>;
  created: number;
  messages: StoredMessage[];
}

/** The largest body SQS takes (256 KiB), also the largest request this endpoint reads (plus envelope). */
export const SQS_MAX_MESSAGE_BYTES = 256 * 1024;
const MAX_REQUEST = 10 * SQS_MAX_MESSAGE_BYTES + 64 * 1024;
const DEFAULT_ATTRIBUTES: Record<string, string> = {
  VisibilityTimeout: '30',
  MessageRetentionPeriod: '345600',
  MaximumMessageSize: String(SQS_MAX_MESSAGE_BYTES),
  DelaySeconds: '0',
  ReceiveMessageWaitTimeSeconds: '0',
};

class SqsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export class SqsEndpoint extends LocalAwsEndpoint {
  readonly region: string;
  readonly accountId: string;
  readonly #queues = new Map<string, StoredQueue>();
  readonly #waiters = new Set<() => void>();
  readonly #log: ((line: string) => void) | undefined;
  /** Requests per operation (tests count ChangeMessageVisibility, ReceiveMessage…). */
  readonly calls = new Map<string, number>();

  constructor(opts: SqsEndpointOptions = {}) {
    super();
    this.region = opts.region ?? 'us-east-1';
    this.accountId = opts.accountId ?? '000000000000';
    this.#log = opts.log;
  }

  override async close(): Promise<void> {
    for (const wake of [...this.#waiters]) wake();
    await super.close();
  }

  /** Create a queue (idempotent) and return its URL. */
  createQueue(name: string, attributes: Record<string, unknown> = {}): string {
    if (!/^[\w-]{1,80}$/u.test(name)) {
      throw new SqsError('InvalidParameterValue', 'queue names: 1-80 letters, digits, - and _');
    }
    const existing = this.#queues.get(name);
    if (existing) return existing.url;
    const queue: StoredQueue = {
      name,
      url: `${this.url}/${this.accountId}/${name}`,
      arn: `arn:aws:sqs:${this.region}:${this.accountId}:${name}`,
      attributes: { ...DEFAULT_ATTRIBUTES },
      created: Date.now(),
      messages: [],
    };
    this.#setAttributes(queue, attributes);
    this.#queues.set(name, queue);
    return queue.url;
  }

  /** The messages in a queue (visible, delayed and in flight), oldest first. */
  messages(name: string): readonly StoredMessage[] {
    return this.#queue(name).messages;
  }

  arnOf(name: string): string {
    return this.#queue(name).arn;
  }

  #queue(nameOrUrl: unknown): StoredQueue {
    if (typeof nameOrUrl !== 'string' || nameOrUrl === '') {
      throw new SqsError('MissingParameter', 'QueueUrl is required');
    }
    const name = nameOrUrl.slice(nameOrUrl.lastIndexOf('/') + 1);
    const q = this.#queues.get(name);
    if (!q) throw new SqsError('QueueDoesNotExist', 'The specified queue does not exist.');
    return q;
  }

  #setAttributes(q: StoredQueue, attributes: Record<string, unknown>): void {
    for (const [k, val] of Object.entries(attributes)) {
      if (typeof val !== 'string') throw new SqsError('InvalidAttributeValue', `${k} must be a string`);
      if (k === 'RedrivePolicy' && val !== '') {
        let p: { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
        try {
          p = JSON.parse(val) as typeof p;
        } catch {
          throw new SqsError('InvalidAttributeValue', 'RedrivePolicy is not JSON');
        }
        const n = Number(p.maxReceiveCount);
        if (typeof p.deadLetterTargetArn !== 'string' || !Number.isInteger(n) || n < 1 || n > 1000) {
          throw new SqsError(
            'InvalidAttributeValue',
            'RedrivePolicy needs deadLetterTargetArn and maxReceiveCount 1-1000',
          );
        }
      }
      q.attributes[k] = val;
    }
  }

  #deadLetterQueue(q: StoredQueue): { queue: StoredQueue; maxReceiveCount: number } | undefined {
    const raw = q.attributes.RedrivePolicy;
    if (!raw) return undefined;
    const p = JSON.parse(raw) as { deadLetterTargetArn: string; maxReceiveCount: number | string };
    const target = [...this.#queues.values()].find((x) => x.arn === p.deadLetterTargetArn);
    return target ? { queue: target, maxReceiveCount: Number(p.maxReceiveCount) } : undefined;
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let operation = '(none)';
    let status = 200;
    try {
      const target = String(req.headers['x-amz-target'] ?? '');
      if (req.method !== 'POST' || !target.startsWith('AmazonSQS.')) {
        throw new SqsError(
          'InvalidAction',
          'expected POST with X-Amz-Target: AmazonSQS.<Operation> (AWS JSON 1.0)',
        );
      }
      operation = target.slice('AmazonSQS.'.length);
      this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
      const body = await readJson(req);
      this.#send(res, 200, await this.#dispatch(operation, body));
    } catch (e) {
      const err = e instanceof SqsError ? e : new SqsError('InternalError', 'internal error', 500);
      status = err.status;
      this.#send(res, err.status, { __type: `com.amazonaws.sqs#${err.type}`, message: err.message });
    } finally {
      this.#log?.(`sqs ${operation} → ${status}`);
    }
  }

  #send(res: ServerResponse, status: number, body: unknown): void {
    sendAwsJson(res, status, body, 'application/x-amz-json-1.0');
  }

  async #dispatch(operation: string, b: Record<string, unknown>): Promise<unknown> {
    switch (operation) {
      case 'CreateQueue':
        return { QueueUrl: this.createQueue(String(b.QueueName ?? ''), asRecord(b.Attributes)) };
      case 'GetQueueUrl':
        return { QueueUrl: this.#queue(String(b.QueueName ?? '')).url };
      case 'ListQueues':
        return { QueueUrls: [...this.#queues.values()].map((q) => q.url) };
      case 'DeleteQueue':
        this.#queues.delete(this.#queue(b.QueueUrl).name);
        return {};
      case 'PurgeQueue':
        this.#queue(b.QueueUrl).messages.length = 0;
        return {};
      case 'GetQueueAttributes':
        return { Attributes: this.#attributes(this.#queue(b.QueueUrl), b.AttributeNames) };
      case 'SetQueueAttributes':
        this.#setAttributes(this.#queue(b.QueueUrl), asRecord(b.Attributes));
        return {};
      case 'SendMessage':
        return this.#enqueue(this.#queue(b.QueueUrl), b);
      case 'SendMessageBatch':
        return this.#batch(b, (q, entry) => this.#enqueue(q, entry));
      case 'ReceiveMessage':
        return { Messages: await this.#receive(this.#queue(b.QueueUrl), b) };
      case 'DeleteMessage':
        this.#delete(this.#queue(b.QueueUrl), b.ReceiptHandle);
        return {};
      case 'DeleteMessageBatch':
        return this.#batch(b, (q, entry) => {
          this.#delete(q, entry.ReceiptHandle);
          return {};
        });
      case 'ChangeMessageVisibility':
        this.#changeVisibility(this.#queue(b.QueueUrl), b.ReceiptHandle, b.VisibilityTimeout);
        return {};
      case 'ChangeMessageVisibilityBatch':
        return this.#batch(b, (q, entry) => {
          this.#changeVisibility(q, entry.ReceiptHandle, entry.VisibilityTimeout);
          return {};
        });
      default:
        throw new SqsError('InvalidAction', `operation ${operation} is not supported by this endpoint`);
    }
  }

  #attributes(q: StoredQueue, names: unknown): Record<string, string> {
    const now = Date.now();
    const all: Record<string, string> = {
      ...q.attributes,
      QueueArn: q.arn,
      CreatedTimestamp: String(Math.floor(q.created / 1000)),
      ApproximateNumberOfMessages: String(q.messages.filter((m) => m.visibleAt <= now).length),
      ApproximateNumberOfMessagesNotVisible: String(
        q.messages.filter((m) => m.visibleAt > now && m.receiveCount > 0).length,
      ),
      ApproximateNumberOfMessagesDelayed: String(
        q.messages.filter((m) => m.visibleAt > now && m.receiveCount === 0).length,
      ),
    };
    const wanted = Array.isArray(names) ? names.map(String) : [];
    if (wanted.includes('All')) return all;
    return Object.fromEntries(Object.entries(all).filter(([k]) => wanted.includes(k)));
  }

  #enqueue(q: StoredQueue, b: Record<string, unknown>) {
    const body = b.MessageBody;
    if (typeof body !== 'string' || body === '') {
      throw new SqsError('MissingParameter', 'The request must contain the parameter MessageBody.');
    }
    const attributes = asRecord(b.MessageAttributes) as Record<string, MessageAttributeValue>;
    const size = Buffer.byteLength(body) + attributesSize(attributes);
    if (size > Number(q.attributes.MaximumMessageSize)) {
      throw new SqsError(
        'InvalidParameterValue',
        `One or more parameters are invalid. Reason: Message must be shorter than ${q.attributes.MaximumMessageSize} bytes.`,
      );
    }
    const delay = Number(b.DelaySeconds ?? q.attributes.DelaySeconds);
    if (!Number.isInteger(delay) || delay < 0 || delay > 900) {
      throw new SqsError('InvalidParameterValue', 'DelaySeconds must be 0-900');
    }
    const now = Date.now();
    const m: StoredMessage = {
      messageId: randomUUID(),
      body,
      attributes,
      sentAt: now,
      visibleAt: now + delay * 1000,
      receiveCount: 0,
    };
    q.messages.push(m);
    this.#wake();
    const out: Record<string, string> = { MessageId: m.messageId, MD5OfMessageBody: md5(body) };
    if (Object.keys(attributes).length) out.MD5OfMessageAttributes = md5OfAttributes(attributes);
    return out;
  }

  async #receive(q: StoredQueue, b: Record<string, unknown>) {
    const max = Number(b.MaxNumberOfMessages ?? 1);
    if (!Number.isInteger(max) || max < 1 || max > 10) {
      throw new SqsError('InvalidParameterValue', 'MaxNumberOfMessages must be 1-10');
    }
    const wait = Number(b.WaitTimeSeconds ?? q.attributes.ReceiveMessageWaitTimeSeconds);
    if (!Number.isFinite(wait) || wait < 0 || wait > 20) {
      throw new SqsError('InvalidParameterValue', 'WaitTimeSeconds must be 0-20');
    }
    const vt = Number(b.VisibilityTimeout ?? q.attributes.VisibilityTimeout);
    const until = Date.now() + wait * 1000;
    for (;;) {
      const got = this.#take(q, max, vt);
      if (got.length > 0 || Date.now() >= until || !this.listening) return got.map((m) => toWire(m, b));
      await this.#sleepUntil(until);
    }
  }

  /** Wait for a send, the next message becoming visible, or `until`, whichever comes first. */
  #sleepUntil(until: number): Promise<void> {
    const now = Date.now();
    const nextVisible = Math.min(
      until,
      ...[...this.#queues.values()].flatMap((q) => q.messages.map((m) => m.visibleAt)).filter((t) => t > now),
    );
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(1, nextVisible - now));
      this.#waiters.add(wake);
    });
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  #take(q: StoredQueue, max: number, vt: number): StoredMessage[] {
    const now = Date.now();
    const dlq = this.#deadLetterQueue(q);
    const retention = Number(q.attributes.MessageRetentionPeriod) * 1000;
    q.messages = q.messages.filter((m) => now - m.sentAt < retention);
    const out: StoredMessage[] = [];
    for (const m of [...q.messages]) {
      if (out.length >= max) break;
      if (m.visibleAt > now) continue;
      if (dlq && m.receiveCount >= dlq.maxReceiveCount) {
        // SQS moves it on the receive after the last allowed one; the receive count and first-receive time go along.
        q.messages.splice(q.messages.indexOf(m), 1);
        delete m.receiptHandle;
        dlq.queue.messages.push(m);
        continue;
      }
      m.receiveCount++;
      m.firstReceiveAt ??= now;
      m.visibleAt = now + vt * 1000;
      m.receiptHandle = `${m.messageId}#${randomBytes(12).toString('base64url')}`;
      out.push(m);
    }
    return out;
  }

  #find(q: StoredQueue, handle: unknown): StoredMessage | undefined {
    if (typeof handle !== 'string' || !handle.includes('#')) {
      throw new SqsError('ReceiptHandleIsInvalid', 'The input receipt handle is invalid.');
    }
    return q.messages.find((m) => m.receiptHandle === handle);
  }

  /**
   * An outdated receipt handle of a message still in the queue deletes nothing and succeeds, as on SQS; a handle of a
   * message no longer in this queue (deleted, moved to the dead-letter queue) is `ReceiptHandleIsInvalid`, as moto says.
   */
  #delete(q: StoredQueue, handle: unknown): void {
    const m = this.#find(q, handle);
    if (m) {
      q.messages.splice(q.messages.indexOf(m), 1);
      return;
    }
    const id = String(handle).slice(0, String(handle).indexOf('#'));
    if (!q.messages.some((x) => x.messageId === id)) {
      throw new SqsError('ReceiptHandleIsInvalid', 'The input receipt handle is not valid for this queue.');
    }
  }

  #changeVisibility(q: StoredQueue, handle: unknown, timeout: unknown): void {
    const n = Number(timeout);
    if (!Number.isInteger(n) || n < 0 || n > 43200) {
      throw new SqsError('InvalidParameterValue', 'VisibilityTimeout must be 0-43200');
    }
    const m = this.#find(q, handle);
    if (!m || m.visibleAt <= Date.now()) {
      throw new SqsError('MessageNotInflight', 'The message referred to is not in flight.');
    }
    m.visibleAt = Date.now() + n * 1000;
    if (n === 0) this.#wake();
  }

  #batch(
    b: Record<string, unknown>,
    each: (q: StoredQueue, entry: Record<string, unknown>) => Record<string, unknown>,
  ) {
    const q = this.#queue(b.QueueUrl);
    const entries = Array.isArray(b.Entries) ? (b.Entries as Array<Record<string, unknown>>) : [];
    if (entries.length === 0) throw new SqsError('EmptyBatchRequest', 'There should be at least one entry.');
    if (entries.length > 10) throw new SqsError('TooManyEntriesInBatchRequest', 'At most 10 entries.');
    const Successful: unknown[] = [];
    const Failed: unknown[] = [];
    for (const entry of entries) {
      try {
        Successful.push({ Id: entry.Id, ...each(q, entry) });
      } catch (e) {
        const err = e instanceof SqsError ? e : new SqsError('InternalError', 'internal error');
        Failed.push({ Id: entry.Id, Code: err.type, Message: err.message, SenderFault: err.status < 500 });
      }
    }
    return { Successful, Failed };
  }
}

function toWire(m: StoredMessage, b: Record<string, unknown>) {
  const names = [
    ...(Array.isArray(b.AttributeNames) ? b.AttributeNames : []),
    ...(Array.isArray(b.MessageSystemAttributeNames) ? b.MessageSystemAttributeNames : []),
  ].map(String);
  const system: Record<string, string> = {
    ApproximateReceiveCount: String(m.receiveCount),
    SentTimestamp: String(m.sentAt),
    ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt ?? m.sentAt),
    SenderId: 'AIDAIENQZJOLO23YVJ4VO',
  };
  const all = names.includes('All');
  const Attributes = Object.fromEntries(Object.entries(system).filter(([k]) => all || names.includes(k)));
  const wantedAttrs = Array.isArray(b.MessageAttributeNames) ? b.MessageAttributeNames.map(String) : [];
  const MessageAttributes = Object.fromEntries(
    Object.entries(m.attributes).filter(
      ([k]) => wantedAttrs.includes('All') || wantedAttrs.includes('.*') || wantedAttrs.includes(k),
    ),
  );
  const out: Record<string, unknown> = {
    MessageId: m.messageId,
    ReceiptHandle: m.receiptHandle,
    MD5OfBody: md5(m.body),
    Body: m.body,
  };
  if (Object.keys(Attributes).length) out.Attributes = Attributes;
  if (Object.keys(MessageAttributes).length) {
    out.MessageAttributes = MessageAttributes;
    out.MD5OfMessageAttributes = md5OfAttributes(MessageAttributes);
  }
  return out;
}

function md5(s: string | Buffer): string {
  return createHash('md5').update(s).digest('hex');
}

/** SQS's digest of message attributes: per name (sorted), length-prefixed name, type, transport byte and value. */
export function md5OfAttributes(attributes: Record<string, MessageAttributeValue>): string {
  const h = createHash('md5');
  const field = (bytes: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    h.update(len).update(bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const a = attributes[name]!;
    field(Buffer.from(name, 'utf8'));
    field(Buffer.from(a.DataType, 'utf8'));
    if (a.BinaryValue !== undefined) {
      h.update(Buffer.from([2]));
      field(Buffer.from(a.BinaryValue, 'base64'));
    } else {
      h.update(Buffer.from([1]));
      field(Buffer.from(a.StringValue ?? '', 'utf8'));
    }
  }
  return h.digest('hex');
}

function attributesSize(attributes: Record<string, MessageAttributeValue>): number {
  return Object.entries(attributes).reduce(
    (n, [k, a]) =>
      n +
      Buffer.byteLength(k) +
      Buffer.byteLength(a.DataType) +
      (a.BinaryValue !== undefined
        ? Buffer.from(a.BinaryValue, 'base64').length
        : Buffer.byteLength(a.StringValue ?? '')),
    0,
  );
}

function asRecord(v: unknown): Record<string, unknown> {
  return isJsonObject(v) ? v : {};
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return readJsonObject(
    req,
    MAX_REQUEST,
    () => new SqsError('InvalidParameterValue', 'request body too large'),
    () => new SqsError('SerializationException', 'the request body is not a JSON object'),
  );
}

export async function startSqsEndpoint(opts: SqsEndpointOptions = {}): Promise<SqsEndpoint> {
  return new SqsEndpoint(opts).listen(opts.host, opts.port);
}
