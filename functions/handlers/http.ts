/**
 * HTTP API (payload format 2.0): the request decoded once (`httpRequest`), body decoding with limits, JSON and
 * RFC 9457 problem responses. A problem never carries a stack trace, a secret or a message body.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { type FieldError, SendError, type SmtpDetail } from '../send/errors.ts';
import { type Failed, type FailureCode, statusOf } from './failure.ts';

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
export function httpRemainingMs(
  request: Pick<HttpRequest, 'timeEpoch'> | HttpEvent,
  lambdaRemainingMs: number,
  now = Date.now(),
): number {
  const received = 'timeEpoch' in request ? request.timeEpoch : request.requestContext?.timeEpoch;
  if (typeof received !== 'number' || !Number.isFinite(received) || received > now + 1000) {
    return lambdaRemainingMs;
  }
  return Math.max(0, Math.min(lambdaRemainingMs, received + API_GATEWAY_TIMEOUT_MS - now));
}

/**
 * The HTTP request as the routes see it, decoded ONCE from the API Gateway HTTP API (payload format 2.0) event:
 * method, path (stage prefix removed), lower-cased headers, origin, accept, media type, source IP, path
 * parameters, whether an IAM principal signed it, `timeEpoch`, and the body (decoded on demand under the route's
 * own bound: a 413 is decided before a byte is decoded).
 */
export interface HttpRequest {
  /** Upper-case (`POST`). */
  readonly method: string;
  /** With any stage prefix and a trailing slash removed (`/prod/send/` → `/send`). */
  readonly path: string;
  /** API Gateway's path parameters (`formId`, `messageId`), when the route template set them. */
  readonly pathParameters: Readonly<Record<string, string | undefined>>;
  /** Header names lower-cased (HTTP API does so already; a stray upper-case one is taken too). */
  readonly headers: Readonly<Record<string, string>>;
  readonly origin: string | undefined;
  /** Lower-cased; `''` when absent. */
  readonly accept: string;
  /** Lower-cased, without parameters (`application/json`); `''` when absent. */
  readonly mediaType: string;
  /** The whole `Content-Type` header (its parameters: a multipart boundary). */
  readonly contentType: string;
  readonly sourceIp: string | undefined;
  /** When API Gateway received the request (ms since the epoch), if it said. */
  readonly timeEpoch: number | undefined;
  /** Signed by an IAM principal (SigV4 through the route's IAM authorizer). */
  readonly iamCaller: boolean;
  readonly body: HttpBody;
}

/** The request body as API Gateway handed it over, read within a bound. */
export interface HttpBody {
  /** The raw bytes (HTTP API base64-encodes binary bodies). Throws 413 over `maxBytes`, 400 on bad base64. */
  bytes(maxBytes: number): Buffer;
  /** As text: a text body as it is (no copy), a base64 one decoded as strict UTF-8. Throws 413 over `maxBytes`. */
  text(maxBytes: number): string;
}

/** Decode the event once. */
export function httpRequest(event: HttpEvent): HttpRequest {
  const headers = lowerCased(event.headers);
  const contentType = headers['content-type'] ?? '';
  const ctx = event.requestContext as HttpEvent['requestContext'] & { authorizer?: { iam?: unknown } };
  return {
    ...route(event),
    pathParameters: event.pathParameters ?? {},
    headers,
    origin: headers.origin,
    accept: (headers.accept ?? '').toLowerCase(),
    mediaType: contentType.split(';')[0]!.trim().toLowerCase(),
    contentType,
    sourceIp: ctx.http.sourceIp,
    timeEpoch: typeof ctx.timeEpoch === 'number' ? ctx.timeEpoch : undefined,
    iamCaller: !!ctx.authorizer?.iam,
    body: httpBody(event.body ?? '', event.isBase64Encoded === true),
  };
}

/** Names lower-cased; where two names differ only in case, the already lower-case one wins. */
function lowerCased(h: HttpEvent['headers'] | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined) continue;
    const lower = k.toLowerCase();
    if (lower === k || !(lower in out)) out[lower] = v;
  }
  return out;
}

/** Method and path with any stage prefix removed (`/prod/send` → `/send`). */
function route(event: HttpEvent): { method: string; path: string } {
  const method = event.requestContext.http.method.toUpperCase();
  let path = event.rawPath || event.requestContext.http.path || '/';
  const stage = event.requestContext.stage;
  if (stage && stage !== '$default' && (path === `/${stage}` || path.startsWith(`/${stage}/`))) {
    path = path.slice(stage.length + 1) || '/';
  }
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return { method, path };
}

function httpBody(raw: string, base64: boolean): HttpBody {
  const bytes = (maxBytes: number): Buffer => {
    if (!base64) {
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
    const decoded = Buffer.from(clean, 'base64');
    if (decoded.length > maxBytes) throw tooLarge(decoded.length, maxBytes);
    return decoded;
  };
  const text = (maxBytes: number): string => {
    if (base64) return decodeUtf8(bytes(maxBytes));
    const n = Buffer.byteLength(raw, 'utf8');
    if (n > maxBytes) throw tooLarge(n, maxBytes);
    return raw;
  };
  return { bytes, text };
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

/** A `Problem` as RFC 9457 `application/problem+json` (its `hint` the code only; Retry-After a header). */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: FailureCode;
  errors?: FieldError[];
  smtp?: SmtpDetail;
  /** Provider hint code (IAM callers only; its sentence ends `detail`). */
  hint?: string;
  requestId?: string;
}

/**
 * The problem document. `audience: 'public'` (form routes) leaves provider hints out: they describe the
 * deployment, which is for its operators (IAM callers, logs), not for a site's visitors.
 */
export function problemOf(
  err: Failed,
  requestId?: string,
  audience: 'iam' | 'public' = 'iam',
): ProblemDocument {
  const hint = audience === 'iam' && err instanceof SendError ? err.hint : undefined;
  const p: ProblemDocument = {
    type: PROBLEM_TYPE_BASE + err.code,
    title: err.title,
    status: statusOf(err),
    detail: hint ? `${err.message}. ${hint.text}` : err.message,
    code: err.code,
  };
  if (err.errors?.length) p.errors = err.errors;
  if (err instanceof SendError && err.smtp) {
    const { hint: _code, ...smtp } = err.smtp;
    p.smtp = hint ? err.smtp : smtp;
  }
  if (hint) p.hint = hint.code;
  if (requestId) p.requestId = requestId;
  return p;
}

/** RFC 9457 `application/problem+json`; `Retry-After` on transient failures. */
export function problem(
  err: Failed,
  headers: Record<string, string> = {},
  requestId?: string,
  audience: 'iam' | 'public' = 'iam',
): HttpResult {
  const extra: Record<string, string> = { ...headers };
  if (err.retryAfter !== undefined && err.transient) extra['retry-after'] = String(err.retryAfter);
  if (err.code === 'method_not_allowed' && !extra.allow) extra.allow = 'POST';
  if (err instanceof SendError && err.replayed) extra[REPLAYED_HEADER] = 'true';
  const res = json(statusOf(err), problemOf(err, requestId, audience), extra);
  res.headers['content-type'] = 'application/problem+json; charset=utf-8';
  return res;
}
