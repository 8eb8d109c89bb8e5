/**
 * HTTP API (payload format 2.0) helpers: header access, body decoding with limits, JSON and RFC 9457
 * problem responses. A problem never carries a stack trace, a secret or a message body.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { type FieldError, SendError, type SmtpDetail } from '../send/errors.ts';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2 & { headers: Record<string, string> };

export const PROBLEM_TYPE_BASE = 'urn:smtp-send:problem:';
/** Set on an answer replayed from an idempotency record. */
export const REPLAYED_HEADER = 'idempotent-replayed';

export function isHttpEvent(event: unknown): event is HttpEvent {
  const e = event as Partial<HttpEvent> | null;
  return !!e && typeof e === 'object' && e.version === '2.0' && !!e.requestContext?.http?.method;
}

/** API Gateway's integration timeout: it answers 503 this long after it received the request. */
export const API_GATEWAY_TIMEOUT_MS = 30_000;

/**
 * The time an HTTP request really has left: the earlier of Lambda's remaining time and API Gateway's 30 s counted
 * from when API Gateway received the request (`requestContext.timeEpoch`), which includes a cold start's init. A
 * missing or implausible `timeEpoch` (not a number, or in the future) counts as Lambda's time only.
 */
export function httpRemainingMs(event: HttpEvent, lambdaRemainingMs: number, now = Date.now()): number {
  const received = event.requestContext?.timeEpoch;
  if (typeof received !== 'number' || !Number.isFinite(received) || received > now + 1000) {
    return lambdaRemainingMs;
  }
  return Math.max(0, Math.min(lambdaRemainingMs, received + API_GATEWAY_TIMEOUT_MS - now));
}

/** Header lookup; HTTP API lower-cases names already, but be lenient. */
export function header(event: HttpEvent, name: string): string | undefined {
  const h = event.headers ?? {};
  const direct = h[name];
  if (direct !== undefined) return direct;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/** Media type without parameters, lower-cased (`application/json`). */
export function mediaType(event: HttpEvent): string {
  return (header(event, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Method and path with any stage prefix removed (`/prod/send` → `/send`). */
export function route(event: HttpEvent): { method: string; path: string } {
  const method = event.requestContext.http.method.toUpperCase();
  let path = event.rawPath || event.requestContext.http.path || '/';
  const stage = event.requestContext.stage;
  if (stage && stage !== '$default' && (path === `/${stage}` || path.startsWith(`/${stage}/`))) {
    path = path.slice(stage.length + 1) || '/';
  }
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return { method, path };
}

/** The raw body bytes (HTTP API base64-encodes binary bodies). Throws 413 over `maxBytes`, 400 on bad base64. */
export function bodyBytes(event: HttpEvent, maxBytes: number): Buffer {
  const raw = event.body ?? '';
  if (!event.isBase64Encoded) {
    const n = Buffer.byteLength(raw, 'utf8');
    if (n > maxBytes) throw tooLarge(n, maxBytes);
    return Buffer.from(raw, 'utf8');
  }
  // Cheap upper bound before decoding.
  if (Math.floor((raw.length * 3) / 4) - 2 > maxBytes)
    throw tooLarge(Math.floor((raw.length * 3) / 4), maxBytes);
  const clean = raw.replace(/\s+/gu, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/u.test(clean) || clean.length % 4 === 1) {
    throw new SendError('validation_failed', 'the request body is not valid base64', {
      errors: [
        {
          field: 'body',
          code: 'invalid_base64',
          message: 'isBase64Encoded is true but the body is not base64',
        },
      ],
    });
  }
  const bytes = Buffer.from(clean, 'base64');
  if (bytes.length > maxBytes) throw tooLarge(bytes.length, maxBytes);
  return bytes;
}

/**
 * The body as text: a body API Gateway handed over as text is used as it is (its size checked, no copy to bytes
 * and back); a base64 one is decoded and must be strict UTF-8. Throws 413 over `maxBytes`.
 */
export function bodyText(event: HttpEvent, maxBytes: number): string {
  if (event.isBase64Encoded) return decodeUtf8(bodyBytes(event, maxBytes));
  const raw = event.body ?? '';
  const n = Buffer.byteLength(raw, 'utf8');
  if (n > maxBytes) throw tooLarge(n, maxBytes);
  return raw;
}

function tooLarge(n: number, max: number): SendError {
  return new SendError('payload_too_large', `the request body is ${n} bytes; at most ${max} are accepted`, {
    errors: [{ field: 'body', code: 'too_large', message: `at most ${max} bytes` }],
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Strict UTF-8 (invalid sequences are an error, never U+FFFD). */
export function decodeUtf8(bytes: Uint8Array, field = 'body'): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new SendError('validation_failed', `${field} is not valid UTF-8`, {
      errors: [{ field, code: 'invalid_utf8', message: 'is not valid UTF-8' }],
    });
  }
}

export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const at = /position (\d+)/u.exec(String((e as Error).message))?.[1];
    throw new SendError(
      'validation_failed',
      `the request body is not valid JSON${at ? ` (at character ${at})` : ''}`,
      {
        errors: [{ field: 'body', code: 'invalid_json', message: 'is not valid JSON' }],
      },
    );
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  };
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: FieldError[];
  smtp?: SmtpDetail;
  /** Provider hint code (IAM callers only; its sentence ends `detail`). */
  hint?: string;
  requestId?: string;
}

/**
 * The problem body. `audience: 'public'` (form routes) leaves provider hints out: they describe the deployment,
 * which is for its operators (IAM callers, logs), not for a site's visitors.
 */
export function problemOf(err: SendError, requestId?: string, audience: 'iam' | 'public' = 'iam'): Problem {
  const hint = audience === 'iam' ? err.hint : undefined;
  const p: Problem = {
    type: PROBLEM_TYPE_BASE + err.code,
    title: err.title,
    status: err.status,
    detail: hint ? `${err.message}. ${hint.text}` : err.message,
    code: err.code,
  };
  if (err.errors?.length) p.errors = err.errors;
  if (err.smtp) {
    const { hint: _code, ...smtp } = err.smtp;
    p.smtp = hint ? err.smtp : smtp;
  }
  if (hint) p.hint = hint.code;
  if (requestId) p.requestId = requestId;
  return p;
}

/** RFC 9457 `application/problem+json`; `Retry-After` on transient failures. */
export function problem(
  err: SendError,
  headers: Record<string, string> = {},
  requestId?: string,
  audience: 'iam' | 'public' = 'iam',
): HttpResult {
  const extra: Record<string, string> = { ...headers };
  if (err.retryAfter !== undefined && err.transient) extra['retry-after'] = String(err.retryAfter);
  if (err.code === 'method_not_allowed' && !extra.allow) extra.allow = 'POST';
  if (err.replayed) extra[REPLAYED_HEADER] = 'true';
  const res = json(err.status, problemOf(err, requestId, audience), extra);
  res.headers['content-type'] = 'application/problem+json; charset=utf-8';
  return res;
}

/** Unexpected exception → a SendError that says nothing about internals. */
export function toSendError(e: unknown): SendError {
  if (e instanceof SendError) return e;
  return new SendError('internal_error', 'an unexpected error occurred; it has been logged');
}
