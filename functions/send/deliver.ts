/**
 * The use case: validate, compose (`prepare.ts`), then ONE attempt loop (`attemptAll`) submits the pending
 * messages over one SMTP session per attempt, with ONE deadline per invocation. A single message is a batch of
 * one. After each attempt every message's failure is classified once (`retry.ts`: accepted / unknown /
 * refresh-secret / retry / fail): nothing that may have reached the server is ever resent, a 535 re-reads the
 * secret once (a credential rotation needs no redeploy), transient failures wait a jittered backoff while the
 * retry policy and the deadline allow.
 */

import type { ComposedMessage } from '../mime/types.ts';
import type { SmtpError } from '../smtp/error.ts';
import type { BatchItemResult, OutgoingMessage, TransactionResult } from '../smtp/types.ts';
import { domainOf } from './allowlist.ts';
import { SendError } from './errors.ts';
import { type PreparedMessage, type PrepareOptions, prepare } from './prepare.ts';
import {
  type DeliveryMode,
  type DeliveryQueue,
  forRecipients,
  type QueuedMessage,
  type QueueReason,
  queueable,
  splitRecipients,
  toQueued,
} from './queue.ts';
import type { SendRate } from './rate.ts';
import {
  isBatchRequest,
  type ValidSendRequest,
  validateBatchEnvelope,
  validateSendRequest,
} from './request.ts';
import { classify, DEFAULT_RETRY, type RetryPolicy, retryDelay } from './retry.ts';
import { deliveryUnknown, mapSmtpError, smtpFailureOf } from './smtp-failure.ts';
import type { SmtpTransport } from './transport.ts';
import type {
  BatchDeliveryResult,
  BatchItemOutcome,
  DeliveryResult,
  DeliveryTrace,
  Origin,
  QueuedResult,
  SendPolicy,
  SmtpSettings,
  SmtpSettingsSource,
} from './types.ts';

/** Taken off `context.getRemainingTimeInMillis()` so we answer before Lambda kills us. */
export const DEADLINE_SAFETY_MS = 1500;

export interface DeliverDeps {
  smtp: SmtpSettingsSource;
  policy: SendPolicy;
  transport: SmtpTransport;
  retry?: RetryPolicy;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** The delivery queue; without one every mode is `sync` (and `queue` is a configuration error). */
  queue?: DeliveryQueue;
  /** `delivery.maxPerSecond`: `sync-then-queue` queues what the shared rate cannot grant now (send/rate.ts). */
  rate?: SendRate;
}

export interface DeliverOptions extends PrepareOptions {
  /** Epoch ms after which nothing more is attempted. */
  deadline: number;
  trace?: DeliveryTrace;
  /** Told about each message's point of no return and final reply (the idempotency and status records). */
  observer?: DeliveryObserver;
  /** Default `sync`. */
  mode?: DeliveryMode;
  /** `sync-then-queue`: how long the synchronous try may take. Default 4000 ms. */
  syncBudgetMs?: number;
  /** Where the request came in (carried by what is queued; its status says so). */
  origin?: Origin;
  /** The form a form post came through (carried by what is queued). */
  formId?: string;
  /**
   * A batch whose other messages were delivered re-queues its transiently failed ones (EventBridge, direct invoke:
   * their whole-batch retry would resend the delivered ones).
   */
  requeuePartial?: boolean;
}

/**
 * What the use case's records hear from a delivery. `index` is the message's place in the request (0 for one
 * message).
 */
export interface DeliveryObserver {
  /**
   * Awaited just before the write holding message `index`'s last byte (`OutgoingMessage.beforeDataEnd`). A
   * rejection with a `SendError` stops that message (nothing of it is sent) and becomes its failure.
   */
  beforeDataEnd?(index: number, message: ComposedMessage): Promise<void>;
  /** The server accepted message `index`: its RCPT replies and final reply (queue id). */
  accepted?(index: number, result: TransactionResult): void;
  /**
   * Awaited just before message `index` is handed to the delivery queue (its status becomes `queued` before the
   * consumer can see it). Must not reject: a status that cannot be written does not stop the message.
   */
  queuing?(index: number, message: ComposedMessage): Promise<void>;
}

/** A message delivered now (`sent`) or handed to the delivery queue (`queued`). */
export type Submitted = ({ status: 'sent' } & DeliveryResult) | ({ status: 'queued' } & QueuedResult);

export const DEFAULT_SYNC_BUDGET_MS = 4000;

/** `getRemainingTimeInMillis()` → absolute deadline with the safety margin. */
export function deadlineFrom(remainingMs: number, now = Date.now()): number {
  return now + Math.max(0, remainingMs - DEADLINE_SAFETY_MS);
}

/** Validate + deliver one message or a batch (whichever `input` is). */
export async function deliverRequest(
  input: unknown,
  deps: DeliverDeps,
  opts: DeliverOptions,
): Promise<({ kind: 'single' } & Submitted) | ({ kind: 'batch' } & BatchDeliveryResult)> {
  if (isBatchRequest(input)) return { kind: 'batch', ...(await deliverBatch(input, deps, opts)) };
  return { kind: 'single', ...(await deliver(input, deps, opts)) };
}

/** Validate and deliver one message. Throws `SendError`. */
export async function deliver(input: unknown, deps: DeliverDeps, opts: DeliverOptions): Promise<Submitted> {
  const valid = validateSendRequest(input, deps.policy.limits);
  return deliverValid(valid, deps, opts);
}

/**
 * Deliver an already validated message (forms build one from their configuration): a batch of one, in the
 * requested mode — `queue` enqueues it, `sync-then-queue` tries within the sync budget and enqueues it after a
 * transient failure with nothing handed over. Throws `SendError`.
 */
export async function deliverValid(
  valid: ValidSendRequest,
  deps: DeliverDeps,
  opts: DeliverOptions,
): Promise<Submitted> {
  const mode = effectiveMode(opts.mode, deps);
  const settings = await deps.smtp.get();
  const pending: Pending = { index: 0, valid, message: prepare(valid, settings, deps.policy, opts) };
  if (mode === 'queue') return { status: 'queued', ...(await enqueue(pending, 'queued', deps, opts)) };
  if (mode === 'sync-then-queue' && (await granted(1, deps)) === 0)
    return { status: 'queued', ...(await enqueue(pending, 'fallback', deps, opts)) };
  const [ended] = await attemptAll([pending], settings, deps, { ...opts, deadline: tryUntil(mode, opts) });
  if (ended!.status === 'accepted') {
    return { status: 'sent', ...(await deferRecipients(ended!.result, pending.message, deps, opts)) };
  }
  if (mode === 'sync-then-queue' && queueable(ended!.status, ended!.error)) {
    const queued = await enqueue(pending, 'fallback', deps, opts).catch(() => undefined);
    if (queued) return { status: 'queued', ...queued };
  }
  throw ended!.error;
}

/**
 * `sync-then-queue` under `delivery.maxPerSecond`: how many of `wanted` messages the shared rate lets go now. A rate
 * that cannot be read lets them go (the provider's own throttling still applies; a form is not refused for it).
 */
async function granted(wanted: number, deps: DeliverDeps): Promise<number> {
  if (!deps.rate || !deps.queue) return wanted;
  return deps.rate.take(wanted).catch(() => wanted);
}

/** The mode that applies: without a queue, `sync-then-queue` is `sync` and `queue` cannot be honoured. */
function effectiveMode(mode: DeliveryMode | undefined, deps: DeliverDeps): DeliveryMode {
  if (deps.queue || !mode || mode === 'sync') return mode ?? 'sync';
  if (mode === 'sync-then-queue') return 'sync';
  throw new SendError('configuration_error', 'queued delivery is configured but there is no delivery queue');
}

/** `sync-then-queue` stops trying at the sync budget (or the request's own deadline, if earlier). */
function tryUntil(mode: DeliveryMode, opts: DeliverOptions): number {
  if (mode !== 'sync-then-queue') return opts.deadline;
  return Math.min(opts.deadline, Date.now() + (opts.syncBudgetMs ?? DEFAULT_SYNC_BUDGET_MS));
}

async function enqueue(
  { index, message }: Pending,
  reason: Exclude<QueueReason, 'deferred'>,
  deps: DeliverDeps,
  opts: DeliverOptions,
): Promise<QueuedResult> {
  await opts.observer?.queuing?.(index, message);
  await deps.queue!.enqueue(toQueued(message, reason, queuedFrom(opts)));
  return { messageId: message.messageId, reason };
}

/** Where a queued message says it came from. */
function queuedFrom(
  opts: Pick<DeliverOptions, 'origin' | 'formId'>,
): Pick<QueuedMessage, 'origin' | 'formId'> {
  const from: Pick<QueuedMessage, 'origin' | 'formId'> = { origin: opts.origin ?? 'direct_invoke' };
  if (opts.formId !== undefined) from.formId = opts.formId;
  return from;
}

/**
 * The server took the message but refused some recipients with 4xx: with a queue, re-queue the message for them
 * only (`deferred`); 5xx refusals stay `rejected`. Without a queue (or if the enqueue fails) every refusal stays in
 * `rejected` with its code, visible to the caller.
 */
export async function deferRecipients(
  result: DeliveryResult,
  message: ComposedMessage | QueuedMessage,
  deps: Pick<DeliverDeps, 'queue'>,
  opts: Pick<DeliverOptions, 'origin' | 'formId'>,
): Promise<DeliveryResult> {
  const { deferred, rejected } = splitRecipients(result.rejected);
  if (deferred.length === 0 || !deps.queue) return result;
  const queued = 'content' in message ? message : toQueued(message, 'deferred', queuedFrom(opts));
  const to = deferred.map((r) => r.address);
  try {
    await deps.queue.enqueue(forRecipients(queued, to));
  } catch {
    return result;
  }
  return { ...result, rejected, deferred: to };
}

/** Validate each message and send all of them over one SMTP session; every message gets its own outcome. */
export async function deliverBatch(
  input: unknown,
  deps: DeliverDeps,
  opts: DeliverOptions,
): Promise<BatchDeliveryResult> {
  const items = validateBatchEnvelope(input, deps.policy.limits);
  const mode = effectiveMode(opts.mode, deps);
  const settings = await deps.smtp.get();
  const results: BatchItemOutcome[] = new Array(items.length);
  const pending: Pending[] = [];
  items.forEach((item, index) => {
    try {
      const valid = validateSendRequest(item, deps.policy.limits, `messages[${index}]`);
      pending.push({ index, valid, message: prepare(valid, settings, deps.policy, opts) });
    } catch (e) {
      if (!(e instanceof SendError)) throw e;
      results[index] = { index, status: 'rejected', error: e.toJSON() };
    }
  });
  if (mode === 'queue') {
    for (const p of pending) {
      results[p.index] = {
        index: p.index,
        status: 'queued',
        ...(await enqueue(p, 'queued', deps, opts)),
      };
    }
    return { results };
  }
  if (mode === 'sync-then-queue') {
    // What the shared rate cannot grant now goes to the queue at once.
    const now = await granted(pending.length, deps);
    for (const p of pending.splice(now)) {
      results[p.index] = { index: p.index, status: 'queued', ...(await enqueue(p, 'fallback', deps, opts)) };
    }
  }
  const ended = await attemptAll(pending, settings, deps, { ...opts, deadline: tryUntil(mode, opts) });
  const delivered = ended.some((e) => e.status === 'accepted' || e.status === 'unknown');
  const requeue = mode === 'sync-then-queue' || (opts.requeuePartial === true && delivered);
  for (const [k, p] of pending.entries()) {
    results[p.index] = await settleBatchItem(p, ended[k]!, requeue, deps, opts);
  }
  return { results };
}

/** A batch message's final outcome: deferred recipients re-queued; a transient failure re-queued if `requeue`. */
async function settleBatchItem(
  p: Pending,
  ended: Ended,
  requeue: boolean,
  deps: DeliverDeps,
  opts: DeliverOptions,
): Promise<BatchItemOutcome> {
  if (ended.status === 'accepted') {
    const result = await deferRecipients(ended.result, p.message, deps, opts);
    return { index: p.index, status: 'accepted', ...result };
  }
  if (requeue && deps.queue && queueable(ended.status, ended.error)) {
    const reason = opts.mode === 'sync-then-queue' ? 'fallback' : 'requeued';
    const queued = await enqueue(p, reason, deps, opts).catch(() => undefined);
    if (queued) return { index: p.index, status: 'queued', ...queued };
  }
  return batchItemOutcome(p.index, ended);
}

/**
 * Deliver messages composed earlier (the delivery queue's consumer): one session per attempt, the same attempt loop
 * and retry policy. A 535 re-reads the secret and tries again with the same bytes. One outcome per message, in order.
 */
export async function deliverComposed(
  messages: ComposedMessage[],
  deps: DeliverDeps,
  opts: DeliverOptions,
): Promise<Ended[]> {
  if (messages.length === 0) return [];
  const settings = await deps.smtp.get();
  return attemptAll(
    messages.map((message, index) => ({ index, message })),
    settings,
    deps,
    opts,
  );
}

/** A message in the attempt loop: its place in the request, what it was built from, its composed bytes. */
interface Pending {
  index: number;
  /** Absent for a message composed earlier (queued): it keeps its bytes when the secret is re-read. */
  valid?: ValidSendRequest;
  message: PreparedMessage;
}

/** How a message ended (or, between attempts, how its last attempt ended). */
export type Ended =
  | { status: 'accepted'; result: DeliveryResult }
  | { status: 'rejected' | 'not_sent' | 'unknown'; messageId?: string; error: SendError };

/** The result of one attempt for one message: its verdict and how it stands. */
interface Settled {
  verdict: 'accepted' | 'unknown' | 'refresh-secret' | 'retry' | 'fail';
  ended: Ended;
}

/**
 * THE attempt loop. Each attempt sends every pending message over one session; each message's result is
 * classified once; `refresh-secret` re-reads the secret and re-composes those messages (not counted as an
 * attempt), `retry` waits the policy's backoff. Returns one `Ended` per item of `items`, in order.
 */
async function attemptAll(
  items: Pending[],
  initial: SmtpSettings,
  deps: DeliverDeps,
  opts: DeliverOptions,
): Promise<Ended[]> {
  const trace = opts.trace ?? { attempts: 0, roundTrips: 0 };
  noteMessages(trace, items);
  const retry = deps.retry ?? DEFAULT_RETRY;
  const ended = new Map<Pending, Ended>();
  let settings = initial;
  let refreshed = false;
  let pending = items;
  for (let attempt = 1; pending.length > 0; ) {
    trace.attempts++;
    const settled = await attemptOnce(pending, settings, deps, opts, trace, refreshed);
    for (const [k, p] of pending.entries()) ended.set(p, settled[k]!.ended);
    const again = pending.filter((_, k) => settled[k]!.verdict === 'retry');
    const refresh = pending.filter((_, k) => settled[k]!.verdict === 'refresh-secret');
    if (refresh.length > 0) {
      // AUTH was refused: the secret may have rotated. Read it again; the re-read is not an attempt.
      refreshed = true;
      trace.secretRefreshed = true;
      settings = await deps.smtp.refresh();
      for (const p of refresh) if (p.valid) p.message = prepare(p.valid, settings, deps.policy, opts);
      pending = [...refresh, ...again];
      continue;
    }
    const wait = again.length > 0 ? retryDelay(attempt, opts.deadline, retry, deps.random) : undefined;
    if (wait === undefined) break;
    await (deps.sleep ?? sleep)(wait);
    attempt++;
    pending = again;
  }
  return items.map((p) => ended.get(p)!);
}

/** One attempt: one session for every pending message; one `Settled` per message, in order. */
async function attemptOnce(
  pending: Pending[],
  settings: SmtpSettings,
  deps: DeliverDeps,
  opts: DeliverOptions,
  trace: DeliveryTrace,
  refreshed: boolean,
): Promise<Settled[]> {
  let results: Array<BatchItemResult | undefined>;
  try {
    const outcome = await deps.transport.sendBatch(
      settings,
      pending.map((p) => outgoing(p, opts.observer)),
      opts.deadline,
    );
    trace.roundTrips += outcome.roundTrips;
    if (outcome.results.some((r) => r.ok)) trace.reused = outcome.reused;
    results = outcome.results;
  } catch (e) {
    // The session could not even be tried (bad options): every message has this failure.
    const error = smtpFailureOf(e);
    trace.roundTrips += error.roundTrips ?? 0;
    results = pending.map(() => ({ ok: false, error }));
  }
  return pending.map((p, k) => {
    const r = results[k];
    if (r?.ok) opts.observer?.accepted?.(p.index, r);
    return settle(p.message, r, trace, refreshed);
  });
}

/** Classify one message's result of one attempt. */
function settle(
  message: ComposedMessage,
  r: BatchItemResult | undefined,
  trace: DeliveryTrace,
  refreshed: boolean,
): Settled {
  const { messageId } = message;
  if (!r) {
    // The client returns one result per message it was given; anything missing was not attempted.
    const error = new SendError('smtp_unavailable', 'the session ended before this message was sent');
    return { verdict: 'retry', ended: { status: 'not_sent', error } };
  }
  if (r.ok) {
    if (r.withoutSmtpUtf8) trace.withoutSmtpUtf8 = true;
    const rejected = r.rejected.map((x) => ({ address: x.address, code: x.code, message: x.message }));
    const result = { messageId, accepted: r.accepted.map((x) => x.address), rejected };
    return { verdict: 'accepted', ended: { status: 'accepted', result } };
  }
  const err = smtpFailureOf(r.error);
  const held = heldBy(err);
  if (held) {
    // A `beforeDataEnd` hook stopped it: nothing of it was sent. Only an unavailable store is worth another try.
    const verdict = held.code === 'idempotency_unavailable' ? 'retry' : 'fail';
    return { verdict, ended: { status: held.transient ? 'not_sent' : 'rejected', messageId, error: held } };
  }
  trace.smtpCode = err.code;
  trace.smtpPhase = err.phase;
  const verdict = classify(err, refreshed);
  switch (verdict) {
    case 'accepted': {
      // The server took the message; the failure came after (e.g. QUIT). Not an error for the caller.
      const result = { messageId, accepted: [...message.envelope.to], rejected: [] };
      return { verdict, ended: { status: 'accepted', result } };
    }
    case 'unknown':
      return { verdict, ended: { status: 'unknown', messageId, error: deliveryUnknown(err, messageId) } };
    case 'retry':
      return { verdict, ended: { status: 'not_sent', messageId, error: mapSmtpError(err, refreshed) } };
    default:
      return { verdict, ended: { status: 'rejected', messageId, error: mapSmtpError(err, refreshed) } };
  }
}

function batchItemOutcome(index: number, ended: Ended): BatchItemOutcome {
  if (ended.status === 'accepted') return { index, status: 'accepted', ...ended.result };
  const out: BatchItemOutcome = { index, status: ended.status, error: ended.error.toJSON() };
  if (ended.messageId !== undefined) out.messageId = ended.messageId;
  return out;
}

/** The log's view of what is being sent: recipient domains and total size (never addresses). */
function noteMessages(trace: DeliveryTrace, items: Pending[]): void {
  trace.recipientDomains = [...new Set(items.flatMap((p) => p.message.envelope.to.map(domainOf)))];
  trace.size = items.reduce((n, p) => n + p.message.size, 0);
}

function outgoing({ message: m, index }: Pending, observer: DeliveryObserver | undefined): OutgoingMessage {
  const info = (c: ComposedMessage) => ({ eightBit: c.eightBit, smtpUtf8: c.smtpUtf8 });
  const out: OutgoingMessage = { envelope: m.envelope, content: m.bytes, info: info(m) };
  if (m.withoutSmtpUtf8)
    out.withoutSmtpUtf8 = { content: m.withoutSmtpUtf8.bytes, info: info(m.withoutSmtpUtf8) };
  const hook = observer?.beforeDataEnd;
  if (hook) out.beforeDataEnd = () => hook(index, m);
  return out;
}

/** The `SendError` a `beforeDataEnd` hook stopped the message with (see `DeliveryObserver`). */
function heldBy(e: SmtpError): SendError | undefined {
  return e.kind === 'aborted' && e.cause instanceof SendError ? e.cause : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
