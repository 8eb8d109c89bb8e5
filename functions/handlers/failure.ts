/**
 * The adapters' error vocabulary, in one place: the failures only an adapter can produce (no route, wrong method,
 * no such form, an origin the form does not list, a media type a route does not take, the CAPTCHA), the HTTP
 * status of every code (the use case has none), and THE failure shape every adapter answers with (`Problem`):
 * an HTTP problem document (http.ts) is a `Problem` rendered per RFC 9457, a failed asynchronous invocation
 * throws one (async-policy.ts, direct.ts), a batch message's `error` is one.
 */
import {
  boundedDetail,
  boundedFieldErrors,
  type ErrorCode,
  type Failure,
  type FieldError,
  SendError,
  type SmtpDetail,
} from '../send/errors.ts';
import type { BatchItemOutcome } from '../send/types.ts';

/** Codes of the adapters' own failures. */
export type AdapterCode =
  | 'origin_not_allowed'
  | 'unsupported_media_type'
  | 'captcha_failed'
  | 'captcha_unavailable'
  | 'form_not_found'
  | 'not_found'
  | 'method_not_allowed';

/** Every stable code an adapter answers with: the use case's, the adapters' own, and the asynchronous ones. */
export type FailureCode = ErrorCode | AdapterCode | 'unsupported_event' | 'batch_failed';

interface AdapterInfo {
  status: number;
  title: string;
  transient: boolean;
}

const ADAPTER_CODES: Record<AdapterCode, AdapterInfo> = {
  origin_not_allowed: { status: 403, title: 'This origin may not use this form', transient: false },
  unsupported_media_type: { status: 415, title: 'Unsupported content type', transient: false },
  captcha_failed: { status: 403, title: 'CAPTCHA verification failed', transient: false },
  captcha_unavailable: { status: 503, title: 'CAPTCHA verification is unavailable', transient: true },
  form_not_found: { status: 404, title: 'No such form', transient: false },
  not_found: { status: 404, title: 'Not found', transient: false },
  method_not_allowed: { status: 405, title: 'Method not allowed', transient: false },
};

/** The HTTP status of each use-case code (the adapter decides it, as Powertools' `HttpError` does). */
const USE_CASE_STATUS: Record<ErrorCode, number> = {
  validation_failed: 400,
  payload_too_large: 413,
  recipient_not_allowed: 403,
  sender_not_allowed: 403,
  idempotency_key_reused: 422,
  idempotency_in_progress: 409,
  message_not_found: 404,
  idempotency_unavailable: 503,
  smtp_rejected: 502,
  smtp_unavailable: 503,
  delivery_unknown: 502,
  configuration_error: 500,
  internal_error: 500,
};

/** Seconds a transient failure's `Retry-After` says when the failure named none. */
const DEFAULT_RETRY_AFTER_SECONDS = 30;

/** A failure of an adapter itself (HTTP only). `message` is the problem's `detail`. */
export class HttpError extends Error {
  readonly code: AdapterCode;
  readonly status: number;
  readonly errors?: FieldError[];
  readonly retryAfter?: number;
  override readonly name = 'HttpError';

  /** `status`: a code's own status unless given (a missing CAPTCHA token is a 400, a refused one 403). */
  constructor(
    code: AdapterCode,
    detail: string,
    opts: { status?: number; errors?: FieldError[]; retryAfter?: number } = {},
  ) {
    super(boundedDetail(detail));
    this.code = code;
    this.status = opts.status ?? ADAPTER_CODES[code].status;
    if (opts.errors) this.errors = boundedFieldErrors(opts.errors);
    if (opts.retryAfter !== undefined) this.retryAfter = opts.retryAfter;
    else if (ADAPTER_CODES[code].transient) this.retryAfter = DEFAULT_RETRY_AFTER_SECONDS;
  }

  get transient(): boolean {
    return ADAPTER_CODES[this.code].transient;
  }

  get title(): string {
    return ADAPTER_CODES[this.code].title;
  }
}

/** A failure an adapter answers: the use case's or its own. */
export type Failed = SendError | HttpError;

/** The HTTP status of a use-case code. */
export function statusOfCode(code: ErrorCode): number {
  return USE_CASE_STATUS[code];
}

export function statusOf(err: Failed): number {
  return err instanceof HttpError ? err.status : USE_CASE_STATUS[err.code];
}

/** Unexpected exception → a failure that says nothing about internals. */
export function asFailed(e: unknown): Failed {
  if (e instanceof SendError || e instanceof HttpError) return e;
  return new SendError('internal_error', 'an unexpected error occurred; it has been logged');
}

/**
 * THE failure shape of every answer: the stable code, its HTTP status, title and detail, whether the same request
 * may succeed later (`transient`: in a thrown invocation failure), field errors, the SMTP detail, a provider hint
 * (IAM callers and logs only), `retryAfter`, and for `batch_failed` each message's failure.
 */
export interface Problem {
  code: FailureCode;
  status: number;
  title: string;
  detail: string;
  transient?: boolean;
  errors?: FieldError[];
  smtp?: SmtpDetail;
  /** A provider hint: stable code and one sentence. */
  hint?: { code: string; message: string };
  retryAfter?: number;
  /** `batch_failed`: the messages that were not sent (none was). */
  results?: { index: number; status: string; error: Problem }[];
}

/** A failure as a `Problem` (without `transient`: an invocation's problem adds it, async-policy.ts). */
export function toProblem(err: Failed): Problem {
  if (err instanceof SendError) return answered(err.toJSON());
  const p: Problem = { code: err.code, status: err.status, title: err.title, detail: err.message };
  if (err.errors?.length) p.errors = err.errors;
  if (err.retryAfter !== undefined) p.retryAfter = err.retryAfter;
  return p;
}

/** The use case's failure value as answered: with its HTTP status after the code (a stored one's is replaced). */
export function answered(f: Failure): Problem {
  const { code, status: _stored, ...rest } = f as Failure & { status?: number };
  return { code, status: USE_CASE_STATUS[code], ...rest };
}

/** A batch message's outcome as answered: a failed one's `error` with its status. */
export type AnsweredOutcome<R extends BatchItemOutcome = BatchItemOutcome> = R extends { error: Failure }
  ? Omit<R, 'error'> & { error: Problem }
  : R;

/** Batch results as answered: each failed message's `error` with its status. */
export function answeredResults<R extends BatchItemOutcome>(results: readonly R[]): AnsweredOutcome<R>[] {
  return results.map((r) => ('error' in r ? { ...r, error: answered(r.error) } : r) as AnsweredOutcome<R>);
}
