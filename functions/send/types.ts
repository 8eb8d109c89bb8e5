import type { DkimSigner } from '../mime/dkim.ts';
import type { ConnectionOptions } from '../smtp/types.ts';
import type { Failure } from './errors.ts';

/** Where and as whom to submit: resolved from the SMTP secret. */
export interface SmtpSettings {
  connection: ConnectionOptions;
  /** Default (and default-allowed) sender address. */
  from: string;
  fromName?: string;
  /** DKIM keys to sign every message with (one signature each: RSA, Ed25519, or both). */
  dkim?: DkimSigner[];
  /** Changes whenever the secret (or its OAuth access token) changes; a new revision closes the warm session. */
  revision: string;
}

/** The port the use case reads SMTP settings through; `refresh()` re-reads the secret (after a 535). */
export interface SmtpSettingsSource {
  get(): Promise<SmtpSettings>;
  refresh(): Promise<SmtpSettings>;
}

export interface SendLimits {
  maxRecipients: number;
  maxBatch: number;
  maxBodyBytes: number;
  maxAttachmentBytes: number;
  /** Extra header fields per message (default `DEFAULT_HEADER_LIMITS.maxHeaders`). */
  maxHeaders?: number;
  /** Characters in an extra header field's name (default `DEFAULT_HEADER_LIMITS.maxHeaderNameChars`). */
  maxHeaderNameChars?: number;
}

/** Who may send to whom through `/send`, EventBridge and direct invoke. */
export interface SendPolicy {
  /** Address patterns (`*@example.com`); undefined = any recipient. */
  allowedRecipients?: readonly string[];
  /** Address patterns; undefined = only the secret's `from`. */
  allowedSenders?: readonly string[];
  limits: SendLimits;
}

export interface RejectedRecipient {
  address: string;
  code: number;
  message: string;
}

/**
 * Where a message came in (its status and its queued copy say so): the HTTP routes, EventBridge, a direct invoke,
 * the dead-letter redrive, or the delivery queue's consumer (`queue`).
 */
export const ORIGINS = [
  'http_send',
  'http_form',
  'eventbridge',
  'direct_invoke',
  'sqs_redrive',
  'queue',
] as const;
export type Origin = (typeof ORIGINS)[number];

/**
 * A message the server took: to `accepted`, not to `rejected` (refused for good). `deferred`: recipients the server
 * refused with 4xx, re-queued for them only (present only when a delivery queue took them; without one they stay
 * in `rejected`, with their 4xx code).
 */
export interface DeliveryResult {
  messageId: string;
  accepted: string[];
  rejected: RejectedRecipient[];
  deferred?: string[];
}

/** A message handed to the delivery queue instead of being delivered now. */
export interface QueuedResult {
  messageId: string;
  /** `queued`: never tried now; `fallback`: tried, failed transiently, queued; `requeued`: part of a batch. */
  reason: 'queued' | 'fallback' | 'requeued';
}

/**
 * One batch message's outcome:
 * - `accepted`: the server took it (perhaps not for every recipient, see `rejected`),
 * - `rejected`: permanently not sent (invalid, not allowed, or refused by the server),
 * - `not_sent`: a transient failure; safe to send again later,
 * - `unknown`: the server may have it; do not resend blindly,
 * - `queued`: on the delivery queue (queue mode, or a transient failure re-queued); delivered later.
 */
export type BatchItemOutcome =
  | ({ index: number; status: 'accepted' } & DeliveryResult)
  | ({ index: number; status: 'queued' } & QueuedResult)
  | { index: number; status: 'rejected' | 'not_sent' | 'unknown'; messageId?: string; error: Failure };

export interface BatchDeliveryResult {
  results: BatchItemOutcome[];
}

/** Filled in by `deliver` for logging: what happened on the wire. */
export interface DeliveryTrace {
  attempts: number;
  roundTrips: number;
  reused?: boolean;
  secretRefreshed?: boolean;
  smtpCode?: number;
  smtpPhase?: string;
  recipientDomains?: string[];
  size?: number;
  /** The server lacked SMTPUTF8: a message went without its optional Reply-To (its `withoutSmtpUtf8` form). */
  withoutSmtpUtf8?: boolean;
  /**
   * A send record could not be completed after the message was handed over (the store failed): the answer stands,
   * the record reads `sending` and then `unknown` after the deadline. Logged (WARN) with this flag.
   */
  recordFailed?: boolean;
}
