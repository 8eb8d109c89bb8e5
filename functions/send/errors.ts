/**
 * The use case's typed failures. Every failure has a stable `code` (part of the public API: clients switch on
 * it), a title, whether the same request may succeed later, and optional field errors / SMTP details. Messages
 * never contain secrets or bodies. No HTTP here: the adapters map a code to their status (handlers/failure.ts),
 * and the codes only an adapter can produce (no route, wrong method, CAPTCHA, CORS) are the adapter's own.
 */
import type { ProviderHint } from './provider-hints.ts';

export type ErrorCode =
  | 'validation_failed'
  | 'payload_too_large'
  | 'recipient_not_allowed'
  | 'sender_not_allowed'
  | 'idempotency_key_reused'
  | 'idempotency_in_progress'
  | 'message_not_found'
  | 'idempotency_unavailable'
  | 'smtp_rejected'
  | 'smtp_unavailable'
  | 'delivery_unknown'
  | 'configuration_error'
  | 'internal_error';

/** One problem with one input field (`to[3]`, `attachments[0].content`, `email`, `body`). */
export interface FieldError {
  field: string;
  code: string;
  message: string;
}

/** What the SMTP server said, when the failure came from it. */
export interface SmtpDetail {
  phase: string;
  code?: number;
  enhancedCode?: string;
  /** Stable code of the provider hint (provider-hints.ts), when the reply is a known one. */
  hint?: string;
}

export interface ErrorInfo {
  title: string;
  /** Whether the same request may succeed later unchanged (HTTP: Retry-After; EventBridge: throw → retried). */
  transient: boolean;
}

export const ERROR_CODES: Record<ErrorCode, ErrorInfo> = {
  validation_failed: { title: 'The request is not valid', transient: false },
  payload_too_large: { title: 'The request is too large', transient: false },
  recipient_not_allowed: { title: 'Recipient not allowed', transient: false },
  sender_not_allowed: { title: 'Sender not allowed', transient: false },
  idempotency_key_reused: {
    title: 'This idempotency key was used for a different request',
    transient: false,
  },
  idempotency_in_progress: {
    title: 'A request with this idempotency key is still being processed',
    transient: true,
  },
  message_not_found: { title: 'No such message', transient: false },
  idempotency_unavailable: {
    title: 'The idempotency records are unavailable; nothing was sent',
    transient: true,
  },
  smtp_rejected: { title: 'The mail server rejected the message', transient: false },
  smtp_unavailable: { title: 'The mail server is unavailable', transient: true },
  delivery_unknown: {
    title: 'Delivery unknown: the server may have the message; do not retry blindly',
    transient: false,
  },
  configuration_error: {
    title: "The endpoint's own deployment configuration is broken (not a problem with your request)",
    transient: false,
  },
  internal_error: { title: 'Internal error', transient: false },
};

export interface SendErrorOptions {
  /** What a provider's refusal means and what to do (provider-hints.ts); never shown on public form pages. */
  hint?: ProviderHint;
  errors?: FieldError[];
  smtp?: SmtpDetail;
  /** Seconds; set on transient failures. */
  retryAfter?: number;
  /** The answer is a stored one, replayed for a repeated idempotency key (HTTP: `Idempotent-Replayed: true`). */
  replayed?: boolean;
  cause?: unknown;
}

/**
 * Bounds on what a failure carries, whatever built it: an answer or a log line made from a `SendError` never
 * grows with the request (a request with 60,000 bad header names still gets one small answer).
 */
export const ERROR_BOUNDS = { errors: 20, field: 100, message: 200, detail: 1000 } as const;

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** Field errors within `ERROR_BOUNDS` (every failure type's constructor uses this). */
export function boundedFieldErrors(errors: readonly FieldError[]): FieldError[] {
  return errors.slice(0, ERROR_BOUNDS.errors).map((e) => ({
    field: clip(e.field, ERROR_BOUNDS.field),
    code: e.code,
    message: clip(e.message, ERROR_BOUNDS.message),
  }));
}

/** A detail within `ERROR_BOUNDS`. */
export function boundedDetail(detail: string): string {
  return clip(detail, ERROR_BOUNDS.detail);
}

/** A failure of the use case with a stable code. `message` is the problem's `detail`. */
export class SendError extends Error {
  readonly code: ErrorCode;
  readonly errors?: FieldError[];
  readonly smtp?: SmtpDetail;
  readonly retryAfter?: number;
  readonly hint?: ProviderHint;
  readonly replayed?: boolean;
  override readonly name = 'SendError';

  constructor(code: ErrorCode, detail: string, opts: SendErrorOptions = {}) {
    super(boundedDetail(detail), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    if (opts.errors) this.errors = boundedFieldErrors(opts.errors);
    if (opts.smtp) this.smtp = opts.smtp;
    if (opts.hint) this.hint = opts.hint;
    if (opts.replayed) this.replayed = true;
    if (opts.retryAfter !== undefined) this.retryAfter = opts.retryAfter;
    else if (ERROR_CODES[code].transient) this.retryAfter = 30;
  }

  get transient(): boolean {
    return ERROR_CODES[this.code].transient;
  }

  get title(): string {
    return ERROR_CODES[this.code].title;
  }

  /** A plain object safe to return to callers and to log (no stack, no cause). */
  toJSON(): Failure {
    const body: Failure = {
      code: this.code,
      title: this.title,
      detail: this.message,
    };
    if (this.errors?.length) body.errors = this.errors;
    if (this.smtp) body.smtp = this.smtp;
    if (this.hint) body.hint = { code: this.hint.code, message: this.hint.text };
    if (this.retryAfter !== undefined) body.retryAfter = this.retryAfter;
    return body;
  }
}

/**
 * A failure as the use case reports it in a value (a batch message's `error`, a stored answer): what an adapter
 * turns into its own answer (handlers/failure.ts adds the HTTP status).
 */
export interface Failure {
  code: ErrorCode;
  title: string;
  detail: string;
  errors?: FieldError[];
  smtp?: SmtpDetail;
  /** A provider hint: stable code and one sentence (IAM callers and logs only). */
  hint?: { code: string; message: string };
  retryAfter?: number;
}

export function validationFailed(errors: FieldError[], detail?: string): SendError {
  const first = errors[0];
  const text =
    detail ??
    (errors.length === 1 && first
      ? `${first.field}: ${first.message}`
      : `${errors.length} fields are not valid: ${errors
          .slice(0, 5)
          .map((e) => e.field)
          .join(', ')}${errors.length > 5 ? ', …' : ''}`);
  return new SendError('validation_failed', text, { errors });
}
