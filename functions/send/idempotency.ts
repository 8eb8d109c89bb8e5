/**
 * Exactly once: every way in names its repeats with a key, and a repeat never becomes a second mail.
 *
 * The decisions live here; the durable records live behind `SendRecordStore` (a port this layer owns; the
 * DynamoDB adapter is `functions/store/`). Per message:
 * 1. CLAIM the key (keyed messages only): a finished claim with the same payload → its stored answer is replayed;
 *    a different payload → `idempotency_key_reused`; an unfinished claim → `idempotency_in_progress` (Retry-After)
 *    until its owner's deadline has passed, after which a new attempt may take it over — unless (2) happened.
 * 2. MARK, just before the message's last byte (the final `.` or BDAT LAST) is written, that it may arrive
 *    (`beforeDataEnd`). A claim marked and abandoned (its owner died after the marker) is never sent again: a
 *    repeat answers `delivery_unknown` with the Message-ID.
 * 3. FINISH with the outcome. Stored as final: `sent` and `unknown`. Every failure where nothing was sent frees
 *    the key (a repeat is a fresh attempt; nothing can be doubled).
 * Messages without a key get a status record from (2) on, so their status can be asked for too.
 * A message handed to the delivery queue gets its `queued` status before the consumer can see it; the consumer
 * delivers each queued message at most once however often the queue hands it over (`deliverQueuedOnce`).
 */
import type { ComposedMessage } from '../mime/types.ts';
import type { TransactionResult } from '../smtp/types.ts';
import {
  type DeliverDeps,
  type DeliverOptions,
  type DeliveryObserver,
  deliverBatch,
  deliverComposed,
  deliverValid,
  type Ended,
  type Submitted,
} from './deliver.ts';
import { type Failure, SendError } from './errors.ts';
import type { SendRate } from './rate.ts';
import {
  isBatchRequest,
  type ValidSendRequest,
  validateBatchEnvelope,
  validateSendRequest,
} from './request.ts';
import type { BatchItemOutcome, DeliveryResult, Origin, QueuedResult, RejectedRecipient } from './types.ts';

/** `node:crypto` at first use, not at import: it stays out of a cold start's init (docs/benchmarks.md). */
const crypto = () => process.getBuiltinModule('node:crypto');

export type { Origin } from './types.ts';

/** What became of a message: `queued` → `sending` → `sent` | `rejected` | `unknown` | `failed`. */
export type MessageState = 'queued' | 'sending' | 'sent' | 'rejected' | 'unknown' | 'failed';

export interface FinalReply {
  code: number;
  enhancedCode?: string;
  text: string;
  queueId?: string;
}

/** A message's status record. Never a body or a subject. */
export interface MessageStatus {
  messageId: string;
  state: MessageState;
  origin: Origin;
  accepted: Array<{ address: string; code: number }>;
  rejected: RejectedRecipient[];
  /** The server's reply to the end of data (often carries its queue id). */
  reply?: FinalReply;
  /** Delivery attempts of the message (SMTP transactions started). */
  attempts: number;
  /** ISO 8601. */
  createdAt: string;
  updatedAt: string;
  /** When the message's last byte was (about to be) written. */
  dataEndAt?: string;
  /** The failure, for `rejected` / `unknown` / `failed`. */
  error?: Pick<Failure, 'code' | 'smtp'>;
  /** The message was sent under an idempotency key. */
  idempotent: boolean;
}

/** The answer a finished claim replays. */
export type StoredAnswer =
  | { kind: 'sent'; result: DeliveryResult }
  | { kind: 'queued'; result: QueuedResult }
  | { kind: 'unknown'; messageId: string; error: Failure };

/** What a claim stores when its work returns. */
export interface StoredOutcome {
  answer: StoredAnswer;
  status: MessageStatus;
}

/** A key to claim. */
export interface Claim {
  /** Namespaced by way in: `send:…`, `event:…`, `invoke:…`, `request:…`, `form:…`. */
  key: string;
  /** What the key must keep meaning: a different payload under the same key is `idempotency_key_reused`. */
  payload: unknown;
  /** How long the finished claim is kept (and replayed). */
  ttlSeconds: number;
  /** Until when (epoch ms) an unfinished claim belongs to this attempt: its owner's deadline. */
  ownerDeadline: number;
}

/** The durable note, written before a message's last byte, that it may arrive. */
export interface MessageRecord {
  /** Rejects when the note cannot be written: then the message is not sent. */
  markDataEnd(status: MessageStatus): Promise<void>;
}

export type ClaimResult =
  /** `recordFailed`: the work ran but its outcome could not be stored. */
  | { kind: 'done'; stored: StoredOutcome; replayed: boolean; recordFailed?: true }
  /** A different payload was claimed under this key. */
  | { kind: 'reused' }
  /** Another attempt holds the claim until `ownerDeadline`. */
  | { kind: 'in_progress'; ownerDeadline?: number }
  /** The owner marked the message (it may have arrived) and never finished: it is never sent again. */
  | { kind: 'abandoned'; status: MessageStatus };

/** The port to the records (DynamoDB in the deployed stack and locally: `functions/store/`). */
export interface SendRecordStore {
  /**
   * Claim `claim.key` and run `work` while holding it. `work` resolving stores its outcome (replayed for
   * repeats); `work` rejecting frees the key and the rejection is passed on.
   */
  once(claim: Claim, work: (record: MessageRecord) => Promise<StoredOutcome>): Promise<ClaimResult>;
  /** The status record of a message sent without a key: `markDataEnd`, then `finish`. */
  track(opts: TrackOptions): MessageRecord & { finish(status: MessageStatus): Promise<void> };
  /** The latest status of a message, if it has a record (from its marker on, or queued). */
  status(messageId: string): Promise<MessageStatus | undefined>;
  /** Write a message's status as it stands outside any claim (`queued`, and what the queue's consumer left). */
  saveStatus(status: MessageStatus, ttlSeconds: number): Promise<void>;
  /** `delivery.maxPerSecond`: the sending rate every instance shares, kept with the records (send/rate.ts). */
  sendRate(perSecond: number): SendRate;
  /** Start loading what the first call needs (cold start: alongside the other prewarm work). Never throws. */
  preload?(): void;
}

export interface TrackOptions {
  ttlSeconds: number;
  /** Epoch ms; a record still `sending` after this reads `unknown`. */
  ownerDeadline: number;
}

/**
 * The records could not be read or written. `conflict`: a conditional write found another attempt's record.
 * The adapter throws it; the use case answers `idempotency_unavailable` (nothing sent) or
 * `idempotency_in_progress`.
 */
export class RecordStoreError extends Error {
  override readonly name = 'RecordStoreError';
  constructor(
    message: string,
    readonly conflict: boolean,
    opts?: { cause?: unknown },
  ) {
    super(message, opts);
  }
}

export interface IdempotencyPolicy {
  store: SendRecordStore;
  /** `idempotency.ttlSeconds` (default 24 h). */
  ttlSeconds: number;
}

export const DEFAULT_IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;

/** The key a request is known by. `scope` keeps the ways in apart (`send`, `event`, `invoke`, `request`, `form`). */
export interface RequestKey {
  scope: 'send' | 'event' | 'invoke' | 'request' | 'form' | 'queue';
  value: string;
  /** Forms: the dedupe window instead of `ttlSeconds`. */
  ttlSeconds?: number;
}

export type DeliveredAnswer =
  | ({ kind: 'single'; replayed: boolean } & Submitted)
  | { kind: 'batch'; replayed: boolean; results: Array<BatchItemOutcome & { replayed?: true }> };

export interface OnceOptions extends DeliverOptions {
  origin: Origin;
  /** The request's key; messages of a batch may carry their own (`idempotencyKey`). */
  key?: RequestKey;
}

/**
 * Validate and deliver one message or a batch at most once per key. Throws `SendError` as `deliverRequest`
 * does, plus `idempotency_key_reused` / `idempotency_in_progress`; a replayed failure has `replayed: true`.
 * Without `policy` (idempotency off) it is `deliverRequest` with no records.
 */
export async function deliverOnce(
  input: unknown,
  deps: DeliverDeps,
  policy: IdempotencyPolicy | undefined,
  opts: OnceOptions,
): Promise<DeliveredAnswer> {
  if (isBatchRequest(input)) return deliverBatchOnce(input, deps, policy, opts);
  const valid = validateSendRequest(input, deps.policy.limits);
  const ownKey = (input as { idempotencyKey?: string }).idempotencyKey;
  const key: RequestKey | undefined =
    ownKey !== undefined ? { scope: callerScope(opts), value: ownKey } : opts.key;
  const { key: _, ...rest } = opts;
  const answer = await deliverValidOnce(valid, payloadOf(input), deps, policy, key ? { ...rest, key } : rest);
  return { kind: 'single', ...answer };
}

/**
 * One validated message at most once per `opts.key` (forms build theirs from their configuration); `payload` is
 * what the key must keep meaning. With `waitWhileInProgress` (forms: a person at a browser cannot act on a 409) a
 * repeat waits for the first attempt within its own deadline and answers as it did.
 */
export async function deliverValidOnce(
  valid: ValidSendRequest,
  payload: unknown,
  deps: DeliverDeps,
  policy: IdempotencyPolicy | undefined,
  opts: OnceOptions & { waitWhileInProgress?: boolean },
): Promise<Submitted & { replayed: boolean }> {
  const { key } = opts;
  const send = (observer?: DeliveryObserver) => deliverValid(valid, deps, withObserver(opts, observer));
  if (!policy) {
    refuseKeyWithoutStore(key, opts);
    return { replayed: false, ...(await send()) };
  }
  if (!key) return { replayed: false, ...(await tracked(policy, opts, send)) };
  const claim = claimOf(key, payload, policy, opts);
  const result = await claimWaiting(policy.store, claim, opts, async (record) => {
    const started = new Date().toISOString();
    const obs = observe(record, opts.origin, started, true, saver(policy, opts));
    try {
      return storedOf(await send(obs.observer), obs);
    } catch (e) {
      if (!(e instanceof SendError) || e.code !== 'delivery_unknown' || !obs.messageId) throw e;
      const error = e.toJSON();
      return {
        answer: { kind: 'unknown', messageId: obs.messageId, error },
        status: obs.final('unknown', obs.messageId, error),
      };
    }
  });
  if (result.kind === 'done' && result.recordFailed && opts.trace) opts.trace.recordFailed = true;
  const stored = settle(result);
  const replayed = result.kind !== 'done' || result.replayed;
  if (stored.answer.kind === 'sent') return { status: 'sent', replayed, ...stored.answer.result };
  if (stored.answer.kind === 'queued') return { status: 'queued', replayed, ...stored.answer.result };
  throw unknownError(stored.answer, replayed);
}

/** What a claim stores for a message delivered now or handed to the delivery queue. */
function storedOf(r: Submitted, obs: Observation): StoredOutcome {
  const { status, ...result } = r;
  if (status === 'sent') {
    return {
      answer: { kind: 'sent', result: result as DeliveryResult },
      status: obs.final('sent', r.messageId),
    };
  }
  return {
    answer: { kind: 'queued', result: result as QueuedResult },
    status: obs.final('queued', r.messageId),
  };
}

/** The status writer the observer's `queuing` uses; a failed write is noted, never thrown. */
function saver(policy: IdempotencyPolicy, opts: DeliverOptions): (s: MessageStatus) => Promise<void> {
  return (s) =>
    policy.store.saveStatus(s, policy.ttlSeconds).catch(() => {
      if (opts.trace) opts.trace.recordFailed = true;
    });
}

/** `claimOnce`; with `waitWhileInProgress`, an unfinished claim is asked again (backing off) until the deadline. */
async function claimWaiting(
  store: SendRecordStore,
  claim: Claim,
  opts: { deadline: number; waitWhileInProgress?: boolean },
  work: (record: MessageRecord) => Promise<StoredOutcome>,
): Promise<ClaimResult> {
  for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
    const result = await claimOnce(store, claim, work);
    if (result.kind !== 'in_progress' || !opts.waitWhileInProgress) return result;
    if (Date.now() + wait >= opts.deadline) return result;
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** Forms: how long a repeat of the same submission is answered from the first (`forms.<id>.dedupeWindowSeconds`). */
export const DEFAULT_FORM_DEDUPE_SECONDS = 600;

/**
 * A form submission's key: a fingerprint of the form id, its fields (whitespace collapsed, NFC, sorted by name) and
 * its attachments (name + SHA-256 of the content). A double submit or a reload within the window is the same key.
 */
export function formSubmissionKey(
  formId: string,
  fields: ReadonlyArray<readonly [string, string]>,
  files: ReadonlyArray<{ filename: string; content: Uint8Array }>,
  windowSeconds: number,
): RequestKey {
  const norm = (s: string) => s.normalize('NFC').replace(/\s+/gu, ' ').trim();
  const byName = (a: readonly string[], b: readonly string[]) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0);
  const fieldList = fields.map(([n, v]) => [n, norm(v)]).sort(byName);
  const fileList = files
    .map((f) => [f.filename, crypto().createHash('sha256').update(f.content).digest('base64url')])
    .sort(byName);
  const digest = crypto()
    .createHash('sha256')
    .update(JSON.stringify({ formId, fields: fieldList, files: fileList }))
    .digest('base64url');
  return { scope: 'form', value: `${formId}:${digest}`, ttlSeconds: windowSeconds };
}

/**
 * The scope of a key the caller wrote into the request (`idempotencyKey`, or the `Idempotency-Key` header): an HTTP
 * caller's keys and an invoker's keys are separate namespaces; a redriven request keeps the scope it was sent in
 * (the dead-letter queue holds direct invokes and EventBridge events, never HTTP requests).
 */
const CALLER_KEY_SCOPE: Record<Origin, RequestKey['scope']> = {
  http_send: 'send',
  http_form: 'invoke',
  eventbridge: 'invoke',
  direct_invoke: 'invoke',
  sqs_redrive: 'invoke',
  queue: 'queue',
};

function callerScope(opts: OnceOptions): RequestKey['scope'] {
  return CALLER_KEY_SCOPE[opts.origin];
}

/**
 * Where a caller's explicit key without the store is refused (its promise cannot be kept). A redrive is not the
 * caller: the key was judged when the request first ran, and the dead-lettered request must not fail again for it.
 */
const REFUSES_KEY_WITHOUT_STORE: Record<Origin, boolean> = {
  http_send: true,
  http_form: true,
  eventbridge: true,
  direct_invoke: true,
  sqs_redrive: false,
  queue: false,
};

/** The stored outcome of a claim, or the `SendError` its state means. */
function settle(result: ClaimResult): StoredOutcome {
  switch (result.kind) {
    case 'done':
      return result.stored;
    case 'reused':
      throw new SendError(
        'idempotency_key_reused',
        'this idempotency key was already used for a different request; use a new key for a new request',
        {
          errors: [
            { field: 'idempotency-key', code: 'reused', message: 'used before for a different request' },
          ],
        },
      );
    case 'in_progress':
      throw new SendError(
        'idempotency_in_progress',
        'a request with this idempotency key is still being processed; ask again later',
        { retryAfter: retryAfterSeconds(result.ownerDeadline) },
      );
    case 'abandoned':
      return { answer: abandonedAnswer(result.status), status: result.status };
  }
}

/** An attempt that died after its marker: the server may have the message. Never sent again. */
function abandonedAnswer(status: MessageStatus): StoredAnswer {
  const error = new SendError(
    'delivery_unknown',
    `an earlier attempt with this key stopped after the message was handed over; the server may have it ` +
      `(Message-ID ${status.messageId}). It is not sent again: check the recipient first.`,
  ).toJSON();
  return { kind: 'unknown', messageId: status.messageId, error };
}

function unknownError(answer: Extract<StoredAnswer, { kind: 'unknown' }>, replayed: boolean): SendError {
  const opts: ConstructorParameters<typeof SendError>[2] = { replayed };
  if (answer.error.smtp) opts.smtp = answer.error.smtp;
  return new SendError('delivery_unknown', answer.error.detail, opts);
}

function retryAfterSeconds(ownerDeadline: number | undefined): number {
  if (ownerDeadline === undefined) return 5;
  return Math.min(900, Math.max(1, Math.ceil((ownerDeadline - Date.now()) / 1000)));
}

/** A caller's explicit key cannot be honoured without the store: refused, never silently ignored. */
function refuseKeyWithoutStore(key: RequestKey | undefined, opts: OnceOptions): void {
  if (!key || key.scope === 'event' || key.scope === 'request' || key.scope === 'form') return;
  if (!REFUSES_KEY_WITHOUT_STORE[opts.origin]) return;
  throw new SendError(
    'validation_failed',
    'this endpoint runs without idempotency records; send the request without an idempotency key',
    {
      errors: [
        { field: 'idempotency-key', code: 'idempotency_disabled', message: 'idempotency is turned off' },
      ],
    },
  );
}

function claimOf(key: RequestKey, payload: unknown, policy: IdempotencyPolicy, opts: DeliverOptions): Claim {
  return {
    key: `${key.scope}:${key.value}`,
    payload,
    ttlSeconds: key.ttlSeconds ?? policy.ttlSeconds,
    ownerDeadline: opts.deadline,
  };
}

/** The payload a key stands for: the message without its own key field. */
function payloadOf(message: unknown): unknown {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return message;
  const { idempotencyKey: _, ...rest } = message as Record<string, unknown>;
  return rest;
}

function withObserver(opts: DeliverOptions, observer: DeliveryObserver | undefined): DeliverOptions {
  const { observer: _, ...rest } = opts;
  return observer ? { ...rest, observer } : rest;
}

/**
 * The observer that writes a message's marker through `record` and remembers what the final status needs:
 * the Message-ID, the attempts and the server's replies.
 */
type Observation = ReturnType<typeof observe>;

function observe(
  record: MessageRecord,
  origin: Origin,
  createdAt: string,
  idempotent: boolean,
  save?: (status: MessageStatus) => Promise<void>,
) {
  let attempts = 0;
  let marked: MessageStatus | undefined;
  let result: TransactionResult | undefined;
  const base = (messageId: string): MessageStatus => ({
    messageId,
    state: 'sending',
    origin,
    accepted: [],
    rejected: [],
    attempts,
    createdAt,
    updatedAt: new Date().toISOString(),
    idempotent,
  });
  const obs = {
    get messageId(): string | undefined {
      return marked?.messageId;
    },
    observer: {
      beforeDataEnd: async (_index: number, message: ComposedMessage) => {
        attempts++;
        const status = { ...base(message.messageId), dataEndAt: new Date().toISOString() };
        try {
          await record.markDataEnd(status);
        } catch (e) {
          if (e instanceof RecordStoreError && e.conflict) {
            throw new SendError(
              'idempotency_in_progress',
              'another attempt holds this message; nothing was sent',
              {
                cause: e,
              },
            );
          }
          throw storeUnavailable(e);
        }
        marked = status;
      },
      accepted: (_index: number, r: TransactionResult) => {
        result = r;
      },
      queuing: async (_index: number, message: ComposedMessage) => {
        await save?.({ ...base(message.messageId), state: 'queued' });
      },
    } satisfies DeliveryObserver,
    /** The final status; `sent` carries the server's replies. */
    final(state: MessageState, messageId: string, error?: Failure): MessageStatus {
      const s: MessageStatus = {
        ...base(messageId),
        ...(marked ? { dataEndAt: marked.dataEndAt } : {}),
        state,
      };
      if (result) {
        s.accepted = result.accepted.map((r) => ({ address: r.address, code: r.code }));
        s.rejected = result.rejected.map((r) => ({ address: r.address, code: r.code, message: r.message }));
        s.reply = finalReply(result);
      }
      if (error) s.error = error.smtp ? { code: error.code, smtp: error.smtp } : { code: error.code };
      return s;
    },
  };
  return obs;
}

function finalReply(r: TransactionResult): FinalReply {
  const reply: FinalReply = { code: r.response.code, text: r.response.text.slice(0, 500) };
  if (r.response.enhancedCode) reply.enhancedCode = r.response.enhancedCode;
  if (r.queueId) reply.queueId = r.queueId;
  return reply;
}

/** Deliver a message without a key, keeping its status record from the marker on. */
async function tracked(
  policy: IdempotencyPolicy,
  opts: OnceOptions,
  send: (observer: DeliveryObserver) => Promise<Submitted>,
): Promise<Submitted> {
  const record = policy.store.track(trackOptions(policy, opts));
  const obs = observe(record, opts.origin, new Date().toISOString(), false, saver(policy, opts));
  try {
    const r = await send(obs.observer);
    // A queued message's status was written by `queuing`; the consumer keeps it from there.
    if (r.status === 'sent') await finishQuietly(record, obs.final('sent', r.messageId), opts);
    return r;
  } catch (e) {
    if (obs.messageId && e instanceof SendError) {
      const state: MessageState =
        e.code === 'delivery_unknown' ? 'unknown' : e.transient ? 'failed' : 'rejected';
      await finishQuietly(record, obs.final(state, obs.messageId, e.toJSON()), opts);
    }
    throw e;
  }
}

/** The final status write of an untracked message must not turn a sent message into an error. */
async function finishQuietly(
  record: { finish(status: MessageStatus): Promise<void> },
  status: MessageStatus,
  opts: DeliverOptions,
): Promise<void> {
  try {
    await record.finish(status);
  } catch {
    // The marker says `sending` with its time; the status reader reports such a record as unknown later.
    if (opts.trace) opts.trace.recordFailed = true;
  }
}

type BatchAnswer = BatchItemOutcome & { replayed?: true };

/** One keyed message's claim while its batch is sent: the claim waits for `outcome`. */
interface HeldClaim {
  result: Promise<ClaimResult>;
  /** Resolves once `work` runs (the key is ours) or the claim settled without it. */
  ready: Promise<void>;
  record?: MessageRecord;
  settleWork?: { resolve(o: StoredOutcome): void; reject(e: unknown): void };
}

/**
 * A batch: every message has its own key (its `idempotencyKey`, else `<request key>#<index>`), so a retried
 * batch re-sends only the messages that were not delivered. All keys are claimed first; the messages whose
 * claims are ours (and those without a key) go over one SMTP session; the rest answer from their records.
 */
async function deliverBatchOnce(
  input: { messages: unknown },
  deps: DeliverDeps,
  policy: IdempotencyPolicy | undefined,
  opts: OnceOptions,
): Promise<DeliveredAnswer> {
  const items = validateBatchEnvelope(input, deps.policy.limits);
  const envelopeKey = (input as { idempotencyKey?: string }).idempotencyKey;
  const scope = callerScope(opts);
  const requestKey: RequestKey | undefined =
    envelopeKey !== undefined ? { scope, value: envelopeKey } : opts.key;
  const keyOf = (item: unknown, i: number): RequestKey | undefined => {
    const own = (item as { idempotencyKey?: unknown } | null)?.idempotencyKey;
    if (typeof own === 'string') return { scope, value: own };
    return requestKey ? { ...requestKey, value: `${requestKey.value}#${i}` } : undefined;
  };
  if (!policy) {
    for (const [i, item] of items.entries()) refuseKeyWithoutStore(keyOf(item, i), opts);
    return { kind: 'batch', replayed: false, ...(await deliverBatch(input, deps, opts)) };
  }
  const held = items.map((item, i) => {
    const key = keyOf(item, i);
    return key ? hold(policy, claimOf(key, payloadOf(item), policy, opts)) : undefined;
  });
  await Promise.all(held.map((h) => h?.ready));
  const send = items.flatMap((_, i) => (!held[i] || held[i].record ? [i] : []));
  const results: BatchAnswer[] = new Array(items.length);
  if (send.length > 0) await sendHeld(items, send, held, results, deps, policy, opts);
  await Promise.all(
    held.map(async (h, i) => {
      if (!h || h.record) return h?.result.catch(() => undefined);
      results[i] = await answerOf(h.result, i);
    }),
  );
  const replayed = results.every((r) => r.replayed);
  return { kind: 'batch', replayed, results };
}

function hold(policy: IdempotencyPolicy, claim: Claim): HeldClaim {
  let ready!: () => void;
  const h: HeldClaim = {
    ready: new Promise<void>((r) => (ready = r)),
    result: Promise.resolve({ kind: 'reused' }),
  };
  h.result = claimOnce(
    policy.store,
    claim,
    (record) =>
      new Promise<StoredOutcome>((resolve, reject) => {
        h.record = record;
        h.settleWork = { resolve, reject };
        ready();
      }),
  );
  h.result.then(ready, ready);
  return h;
}

/** A claim that was not ours: its stored answer, or the `SendError` its state (or the store) means. */
async function storedAnswerOf(result: Promise<ClaimResult>): Promise<StoredAnswer | SendError> {
  try {
    return settle(await result).answer;
  } catch (e) {
    return e instanceof SendError ? e : storeUnavailable(e);
  }
}

/** A batch message that is not sent now answers from its claim. */
async function answerOf(result: Promise<ClaimResult>, index: number): Promise<BatchAnswer> {
  const a = await storedAnswerOf(result);
  if (a instanceof SendError) {
    return { index, status: a.transient ? 'not_sent' : 'rejected', error: a.toJSON() };
  }
  if (a.kind === 'sent') return { index, status: 'accepted', ...a.result, replayed: true };
  if (a.kind === 'queued') return { index, status: 'queued', ...a.result, replayed: true };
  return { index, status: 'unknown', messageId: a.messageId, error: a.error, replayed: true };
}

function storeUnavailable(cause: unknown): SendError {
  if (cause instanceof SendError) return cause;
  return new SendError(
    'idempotency_unavailable',
    'the idempotency records are unavailable; nothing was sent',
    {
      cause,
    },
  );
}

/** `store.once`, with the store's own failures as `idempotency_unavailable` (the work's pass through). */
async function claimOnce(
  store: SendRecordStore,
  claim: Claim,
  work: (record: MessageRecord) => Promise<StoredOutcome>,
): Promise<ClaimResult> {
  try {
    return await store.once(claim, work);
  } catch (e) {
    throw e instanceof RecordStoreError ? storeUnavailable(e) : e;
  }
}

function trackOptions(policy: IdempotencyPolicy, opts: DeliverOptions): TrackOptions {
  return { ttlSeconds: policy.ttlSeconds, ownerDeadline: opts.deadline };
}

/** Send the messages `send` (indices into `items`) over one session and settle their claims. */
async function sendHeld(
  items: unknown[],
  send: number[],
  held: Array<HeldClaim | undefined>,
  results: BatchAnswer[],
  deps: DeliverDeps,
  policy: IdempotencyPolicy,
  opts: OnceOptions,
): Promise<void> {
  const created = new Date().toISOString();
  const watched = send.map((i) => {
    const h = held[i];
    const untracked = h ? undefined : policy.store.track(trackOptions(policy, opts));
    const obs = observe(h?.record ?? untracked!, opts.origin, created, !!h, saver(policy, opts));
    return { i, h, untracked, obs };
  });
  const observer = fanOut(watched.map((w) => w.obs));
  const sub = { messages: send.map((i) => payloadOf(items[i])) };
  let out: Awaited<ReturnType<typeof deliverBatch>>;
  try {
    out = await deliverBatch(sub, deps, withObserver(opts, observer));
  } catch (e) {
    for (const w of watched) w.h?.settleWork?.reject(e);
    throw e;
  }
  await Promise.all(
    out.results.map(async (r, j) => {
      const w = watched[j]!;
      const item = reindex(r, j, w.i);
      results[w.i] = item;
      const final = statusOfItem(w.obs, item);
      // Refused before its marker (nothing of it was sent): its status lives outside any claim.
      const unmarked = !w.obs.messageId && (item.status === 'rejected' || item.status === 'not_sent');
      if (final && unmarked) await saver(policy, opts)(final);
      if (w.untracked) {
        if (final && item.status !== 'queued' && !unmarked) await finishQuietly(w.untracked, final, opts);
        return;
      }
      if (item.status === 'accepted') {
        const { index: _, status: __, ...result } = item;
        w.h?.settleWork?.resolve({ answer: { kind: 'sent', result }, status: final! });
      } else if (item.status === 'queued') {
        const { index: _, status: __, ...result } = item;
        w.h?.settleWork?.resolve({ answer: { kind: 'queued', result }, status: final! });
      } else if (item.status === 'unknown' && item.messageId && final) {
        w.h?.settleWork?.resolve({
          answer: { kind: 'unknown', messageId: item.messageId, error: item.error },
          status: final,
        });
      } else w.h?.settleWork?.reject(new Error(`not sent: ${item.status}`));
      await w.h?.result.catch(() => undefined);
    }),
  );
}

function statusOfItem(obs: Observation, item: BatchItemOutcome): MessageStatus | undefined {
  if (item.status === 'accepted') return obs.final('sent', item.messageId);
  if (item.status === 'queued') return obs.final('queued', item.messageId);
  const messageId = obs.messageId ?? item.messageId;
  if (!messageId) return undefined;
  const state: MessageState =
    item.status === 'unknown' ? 'unknown' : item.status === 'not_sent' ? 'failed' : 'rejected';
  return obs.final(state, messageId, item.error);
}

/** A sub-batch outcome at its place in the whole batch (field errors name `messages[i]`). */
function reindex(r: BatchItemOutcome, from: number, to: number): BatchItemOutcome {
  if (from === to) return r;
  const prefix = `messages[${from}]`;
  if (r.status === 'accepted' || r.status === 'queued') return { ...r, index: to };
  const errors = r.error.errors?.map((e) =>
    e.field.startsWith(prefix) ? { ...e, field: `messages[${to}]${e.field.slice(prefix.length)}` } : e,
  );
  return { ...r, index: to, error: errors ? { ...r.error, errors } : r.error };
}

/** One observer for a batch: message `j`'s events go to `observations[j]`. */
function fanOut(observations: Observation[]): DeliveryObserver {
  return {
    beforeDataEnd: (j, m) => observations[j]!.observer.beforeDataEnd(j, m),
    accepted: (j, r) => observations[j]!.observer.accepted(j, r),
    queuing: (j, m) => observations[j]!.observer.queuing(j, m),
  };
}

/** A message the delivery queue's consumer delivers; `lastTry`: the queue will not hand it over again. */
export interface QueuedDelivery {
  message: ComposedMessage;
  /** This is the message's `attempt`-th try from the queue (SQS's receive count). */
  attempt: number;
  lastTry: boolean;
}

/**
 * The delivery queue's consumer: each queued message at most once, however often the queue hands it over (SQS
 * delivers at least once; a consumer may die right after the final dot). Each message is claimed under
 * `queue:<Message-ID> <recipients>` (a deferred re-queue for other recipients is a claim of its own): a finished
 * claim answers as it did and nothing is resent; one marked and abandoned answers `unknown` (never resent); one
 * still held by another consumer answers `not_sent` (the queue tries later). The rest go over one SMTP session
 * (`deliverComposed`). A message not delivered keeps the status `queued`, or `failed` / `rejected` when this was
 * its last try. Without `policy` it is `deliverComposed`.
 */
export async function deliverQueuedOnce(
  items: QueuedDelivery[],
  deps: DeliverDeps,
  policy: IdempotencyPolicy | undefined,
  opts: DeliverOptions,
): Promise<Ended[]> {
  const messages = items.map((i) => i.message);
  if (!policy) return deliverComposed(messages, deps, opts);
  const held = messages.map((m) =>
    hold(policy, claimOf(queueKey(m), { to: [...m.envelope.to] }, policy, opts)),
  );
  await Promise.all(held.map((h) => h.ready));
  const ended: Ended[] = new Array(items.length);
  const send = held.flatMap((h, i) => (h.record ? [i] : []));
  if (send.length > 0) {
    const created = new Date().toISOString();
    const obs = send.map((i) => observe(held[i]!.record!, 'queue', created, true));
    let out: Ended[];
    try {
      out = await deliverComposed(
        send.map((i) => messages[i]!),
        deps,
        withObserver(opts, fanOut(obs)),
      );
    } catch (e) {
      for (const i of send) held[i]!.settleWork?.reject(e);
      throw e;
    }
    for (const [j, i] of send.entries()) ended[i] = settleQueued(held[i]!, out[j]!, obs[j]!);
  }
  await Promise.all(
    held.map(async (h, i) => {
      if (h.record) await h.result.catch(() => undefined);
      else ended[i] = await endedOf(h.result, messages[i]!.messageId);
    }),
  );
  await Promise.all(items.map((item, i) => saveUndelivered(policy, item, ended[i]!, opts)));
  return ended;
}

function queueKey(m: ComposedMessage): RequestKey {
  const to = [...m.envelope.to].sort().join(',');
  return {
    scope: 'queue',
    value: `${m.messageId} ${crypto().createHash('sha256').update(to).digest('base64url')}`,
  };
}

/** Store a delivered (or possibly delivered) message's outcome in its claim; free the claim otherwise. */
function settleQueued(h: HeldClaim, e: Ended, obs: Observation): Ended {
  if (e.status === 'accepted') {
    h.settleWork?.resolve({
      answer: { kind: 'sent', result: e.result },
      status: obs.final('sent', e.result.messageId),
    });
  } else if (e.status === 'unknown' && obs.messageId) {
    const error = e.error.toJSON();
    h.settleWork?.resolve({
      answer: { kind: 'unknown', messageId: obs.messageId, error },
      status: obs.final('unknown', obs.messageId, error),
    });
  } else h.settleWork?.reject(e.error);
  return e;
}

/** A queued message whose claim was not ours: how its earlier delivery ended, or why it waits. */
async function endedOf(result: Promise<ClaimResult>, messageId: string): Promise<Ended> {
  const a = await storedAnswerOf(result);
  if (a instanceof SendError) return { status: a.transient ? 'not_sent' : 'rejected', messageId, error: a };
  if (a.kind === 'sent') return { status: 'accepted', result: a.result };
  if (a.kind === 'unknown') return { status: 'unknown', messageId, error: unknownError(a, true) };
  const error = new SendError('internal_error', 'a queued message was claimed as queued again');
  return { status: 'rejected', messageId, error };
}

/** The status of a queued message this attempt did not deliver (another consumer holding it writes its own). */
async function saveUndelivered(
  policy: IdempotencyPolicy,
  item: QueuedDelivery,
  e: Ended,
  opts: DeliverOptions,
): Promise<void> {
  if (e.status === 'accepted' || e.status === 'unknown') return;
  if (e.error.code === 'idempotency_in_progress') return;
  const state: MessageState = e.status === 'rejected' ? 'rejected' : item.lastTry ? 'failed' : 'queued';
  const now = new Date().toISOString();
  const error = e.error.toJSON();
  const status: MessageStatus = {
    messageId: item.message.messageId,
    state,
    origin: 'queue',
    accepted: [],
    rejected: [],
    attempts: item.attempt,
    createdAt: now,
    updatedAt: now,
    error: error.smtp ? { code: error.code, smtp: error.smtp } : { code: error.code },
    idempotent: true,
  };
  await saver(policy, opts)(status);
}
