/**
 * Queued delivery, the use case's side: what goes on the delivery queue and the decisions about it. The queue
 * itself (SQS, S3 for large messages) is an adapter behind the `DeliveryQueue` port (functions/queue/).
 *
 * A queued message is COMPOSED before it is queued: its bytes and its Message-ID are final, so the answer given to
 * the caller (the Message-ID) names exactly what the consumer delivers, and a re-queue for a deferred recipient
 * sends the same message to that recipient only.
 *
 * Decisions (one place):
 * - `queueable(error)`: a synchronous attempt that failed transiently with nothing handed over (`not_sent`: the
 *   server refused the connection, answered 421/450/451/452/454, or the sync budget ran out before the data) is
 *   queued by `sync-then-queue`; anything that may have reached the server is never queued again;
 * - `splitRecipients`: a recipient refused with 4xx at RCPT is DEFERRED (re-queued for that recipient only), one
 *   refused with 5xx is REJECTED (final);
 * - `visibilityBackoff`: how long a throttled or transiently failed queued message stays hidden before the next try.
 */
import type { ComposedMessage } from '../mime/types.ts';
import type { SendError } from './errors.ts';
import type { Origin, RejectedRecipient } from './types.ts';

/**
 * `sync`: delivered in the request. `queue`: composed, queued, answered at once. `sync-then-queue`: tried within the
 * sync budget; queued after a transient failure with nothing handed over.
 */
export type DeliveryMode = 'sync' | 'queue' | 'sync-then-queue';

/** Why a message is on the queue. */
export type QueueReason =
  /** `queue` mode (or `Prefer: respond-async`): never tried synchronously. */
  | 'queued'
  /** `sync-then-queue`: the synchronous attempt failed transiently or ran out of budget before the data. */
  | 'fallback'
  /** Re-queued for recipients the server refused with 4xx (the others have it). */
  | 'deferred'
  /** A transient item of an EventBridge / direct-invoke batch whose other items were delivered. */
  | 'requeued';

export interface QueuedMessage {
  messageId: string;
  envelope: { from: string; to: string[] };
  content: Uint8Array;
  eightBit: boolean;
  smtpUtf8: boolean;
  reason: QueueReason;
  /** Where the request came in, and which form. */
  origin: Origin;
  formId?: string;
  /** Epoch ms when the message was first queued (kept across re-queues: the deferred alarm reads it). */
  queuedAt: number;
}

/** The port the use case enqueues through. */
export interface DeliveryQueue {
  enqueue(message: QueuedMessage): Promise<void>;
}

/** A composed message → the queued form. */
export function toQueued(
  m: ComposedMessage,
  reason: QueueReason,
  from: Pick<QueuedMessage, 'origin' | 'formId'>,
  now = Date.now(),
): QueuedMessage {
  const q: QueuedMessage = {
    messageId: m.messageId,
    envelope: { from: m.envelope.from, to: [...m.envelope.to] },
    content: m.bytes,
    eightBit: m.eightBit,
    smtpUtf8: m.smtpUtf8,
    reason,
    origin: from.origin,
    queuedAt: now,
  };
  if (from.formId !== undefined) q.formId = from.formId;
  return q;
}

/** The same message for some of its recipients only (a deferred re-queue): same bytes, same Message-ID. */
export function forRecipients(
  m: QueuedMessage,
  to: string[],
  reason: QueueReason = 'deferred',
): QueuedMessage {
  return { ...m, envelope: { from: m.envelope.from, to: [...to] }, reason };
}

/** A synchronous failure that `sync-then-queue` (and a partly delivered batch) hands to the queue instead. */
export function queueable(status: 'not_sent' | 'rejected' | 'unknown', error: SendError): boolean {
  return status === 'not_sent' && error.transient;
}

/** RCPT refusals: 4xx → deferred (try again later, that recipient only), 5xx → rejected (final). */
export function splitRecipients(refused: readonly RejectedRecipient[]): {
  deferred: RejectedRecipient[];
  rejected: RejectedRecipient[];
} {
  return {
    deferred: refused.filter((r) => r.code >= 400 && r.code < 500),
    rejected: refused.filter((r) => !(r.code >= 400 && r.code < 500)),
  };
}

export interface VisibilityPolicy {
  baseSeconds: number;
  maxSeconds: number;
}

/** 30 s, 60 s, 120 s … up to 15 min: a throttling provider gets room, a returning one is not waited on for long. */
export const DEFAULT_VISIBILITY: VisibilityPolicy = { baseSeconds: 30, maxSeconds: 900 };

/**
 * Seconds a queued message stays hidden after its `receiveCount`-th receive failed transiently: exponential in the
 * receive count, with jitter in [d/2, d] so the messages of a throttled batch do not all come back at once.
 */
export function visibilityBackoff(
  receiveCount: number,
  policy: VisibilityPolicy = DEFAULT_VISIBILITY,
  random: () => number = Math.random,
): number {
  const n = Math.max(1, Math.floor(receiveCount) || 1);
  const d = Math.min(policy.maxSeconds, policy.baseSeconds * 2 ** (n - 1));
  return Math.max(1, Math.round(d / 2 + (random() * d) / 2));
}
