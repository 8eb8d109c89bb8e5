/**
 * The API Gateway HTTP API side of the local server: builds the payload format 2.0 event exactly as API Gateway
 * does from a Node request, and writes a Lambda's payload 2.0 response back as API Gateway would.
 *
 * Reference: "Working with AWS Lambda proxy integrations for HTTP APIs" (payload format version 2.0).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/** The account/API ids the local server pretends to be (visible in events; nothing checks them). */
export const LOCAL_ACCOUNT_ID = '000000000000';
export const LOCAL_API_ID = 'local';

/** HTTP API's request payload limit (10 MB); larger requests get 413 before reaching the function. */
export const MAX_REQUEST_BYTES = 10 * 1024 * 1024;

/**
 * HTTP API gives a request 30 seconds end to end (its integration timeout): a client that has not sent the whole
 * request by then gets no more of the server's time. The local server applies the same bound to receiving the
 * request (headers and body), so one slow client cannot hold a connection for minutes.
 */
export const REQUEST_TIMEOUT_MS = 30_000;

/** A route of the deployed HTTP API: `METHOD /path/{param}`. */
export interface HttpApiRoute {
  routeKey: string;
  method: string;
  pattern: RegExp;
  paramNames: string[];
}

export function defineRoute(routeKey: string): HttpApiRoute {
  const [method, path] = routeKey.split(' ') as [string, string];
  const paramNames: string[] = [];
  const source = path
    .split('/')
    .map((segment) => {
      const param = /^\{([A-Za-z0-9_]+)\}$/.exec(segment);
      if (param) {
        paramNames.push(param[1]!);
        return '([^/]+)';
      }
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { routeKey, method, pattern: new RegExp(`^${source}$`), paramNames };
}

/** The routes the CDK stack gives the HTTP API (infra/): everything else is API Gateway's own 404. */
export const HTTP_API_ROUTES: HttpApiRoute[] = [
  defineRoute('POST /send'),
  defineRoute('POST /forms/{formId}'),
  defineRoute('OPTIONS /forms/{formId}'),
  defineRoute('GET /messages/{messageId}'),
];

export interface RouteMatch {
  route: HttpApiRoute;
  pathParameters: Record<string, string> | undefined;
}

/** HTTP API matches routes on the raw path; path parameters are handed over percent-decoded. */
export function matchRoute(
  method: string,
  rawPath: string,
  routes = HTTP_API_ROUTES,
): RouteMatch | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const m = route.pattern.exec(rawPath);
    if (!m) continue;
    if (route.paramNames.length === 0) return { route, pathParameters: undefined };
    const pathParameters: Record<string, string> = {};
    route.paramNames.forEach((name, i) => {
      pathParameters[name] = safeDecode(m[i + 1]!);
    });
    return { route, pathParameters };
  }
  return undefined;
}

/** Does some route exist for this path under any method? (HTTP API answers 404 either way.) */
export function pathHasRoute(rawPath: string, routes = HTTP_API_ROUTES): boolean {
  return routes.some((r) => r.pattern.test(rawPath));
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Bodies API Gateway (HTTP API, payload 2.0) hands over as UTF-8 text; every other content type — including a
 * missing one, `application/x-www-form-urlencoded` and `multipart/form-data` — arrives base64-encoded with
 * `isBase64Encoded: true`.
 */
export function isTextContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  return (
    mediaType.startsWith('text/') ||
    mediaType === 'application/json' ||
    mediaType === 'application/xml' ||
    mediaType === 'application/javascript'
  );
}

/** Header values as API Gateway hands them over: names lower-cased, repeated headers joined with commas. */
export function joinHeaders(rawHeaders: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!;
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  return headers;
}

/** `a=1&a=2&b` → `{ a: '1,2', b: '' }` (decoded; repeated parameters joined with commas, as API Gateway does). */
export function parseQueryStringParameters(rawQueryString: string): Record<string, string> | undefined {
  if (rawQueryString === '') return undefined;
  const params: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(rawQueryString)) {
    params[name] = name in params ? `${params[name]},${value}` : value;
  }
  return Object.keys(params).length > 0 ? params : undefined;
}

/** `dd/MMM/yyyy:HH:mm:ss +0000`, the CLF time API Gateway puts in `requestContext.time`. */
export function clfTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${p(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:` +
    `${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())} +0000`
  );
}

/** An API Gateway-style request id (`requestContext.requestId`), e.g. `JKJaXmPLvHcESHA=`. */
export function newRequestId(): string {
  return randomBytes(10).toString('base64');
}

/** X-Ray trace header as API Gateway adds it. */
function traceId(epochMs: number): string {
  return `Root=1-${Math.floor(epochMs / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
}

/** RFC 9110 §7.6.1 connection-specific fields (and their common relatives). */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

export interface HttpRequestSnapshot {
  method: string;
  /** Request target as sent (`/forms/contact?x=1`). */
  url: string;
  /** Node's `rawHeaders` (name, value, name, value…). */
  rawHeaders: string[];
  body: Buffer;
  sourceIp: string;
  /** `HTTP/1.1` */
  protocol: string;
  /** Host header value used as `domainName` when present. */
  localPort: number;
}

/** Build the payload format 2.0 event API Gateway would send for this request and route. */
export function toHttpApiEvent(
  req: HttpRequestSnapshot,
  match: RouteMatch,
  now = new Date(),
  requestId = newRequestId(),
): APIGatewayProxyEventV2 {
  const queryAt = req.url.indexOf('?');
  const rawPath = queryAt === -1 ? req.url : req.url.slice(0, queryAt);
  const rawQueryString = queryAt === -1 ? '' : req.url.slice(queryAt + 1);
  const headers = joinHeaders(req.rawHeaders);
  // Hop-by-hop headers end at API Gateway's edge; they never reach the function.
  for (const name of HOP_BY_HOP) delete headers[name];
  // API Gateway moves the Cookie header(s) into `cookies` and drops it from `headers`.
  delete headers.cookie;
  const cookies: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() !== 'cookie') continue;
    for (const c of req.rawHeaders[i + 1]!.split(';')) if (c.trim() !== '') cookies.push(c.trim());
  }
  const queryStringParameters = parseQueryStringParameters(rawQueryString);
  const domainName = (headers.host ?? `127.0.0.1:${req.localPort}`).replace(/:\d+$/, '');
  headers['x-forwarded-for'] =
    headers['x-forwarded-for'] === undefined ? req.sourceIp : `${headers['x-forwarded-for']},${req.sourceIp}`;
  headers['x-forwarded-port'] = String(req.localPort);
  headers['x-forwarded-proto'] = 'http';
  headers['x-amzn-trace-id'] = traceId(now.getTime());

  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: match.route.routeKey,
    rawPath,
    rawQueryString,
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(queryStringParameters ? { queryStringParameters } : {}),
    ...(match.pathParameters ? { pathParameters: match.pathParameters } : {}),
    requestContext: {
      accountId: LOCAL_ACCOUNT_ID,
      apiId: LOCAL_API_ID,
      domainName,
      domainPrefix: domainName.split('.')[0]!,
      http: {
        method: req.method,
        path: rawPath,
        protocol: req.protocol,
        sourceIp: req.sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: match.route.routeKey,
      stage: '$default',
      time: clfTime(now),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: false,
  };
  if (req.body.length > 0) {
    if (isTextContentType(headers['content-type'])) {
      event.body = req.body.toString('utf8');
    } else {
      event.body = req.body.toString('base64');
      event.isBase64Encoded = true;
    }
  }
  return event;
}

/** Read a request body, refusing more than `limit` bytes (→ `undefined`). */
export function readBody(req: IncomingMessage, limit = MAX_REQUEST_BYTES): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      if (!tooLarge) chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function snapshotRequest(req: IncomingMessage, body: Buffer): HttpRequestSnapshot {
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    rawHeaders: req.rawHeaders,
    body,
    sourceIp: (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
    protocol: `HTTP/${req.httpVersion}`,
    localPort: req.socket.localPort ?? 0,
  };
}

/** What API Gateway sends back when the function result is a payload 2.0 response. */
export interface HttpApiResponse {
  statusCode: number;
  headers: Array<[string, string]>;
  body: Buffer;
}

/**
 * Interpret a Lambda result as HTTP API does (payload 2.0): a structured result with `statusCode` is used as is
 * (`headers`, `multiValueHeaders`, `cookies` → Set-Cookie, base64 body decoded); anything else is taken as a
 * JSON body with status 200 and `content-type: application/json`.
 */
export function fromLambdaResult(result: unknown): HttpApiResponse {
  if (result === undefined || result === null) {
    return { statusCode: 200, headers: [['content-type', 'application/json']], body: Buffer.alloc(0) };
  }
  if (typeof result === 'string') {
    return {
      statusCode: 200,
      headers: [['content-type', 'application/json']],
      body: Buffer.from(result, 'utf8'),
    };
  }
  if (typeof result !== 'object' || !('statusCode' in result)) {
    return {
      statusCode: 200,
      headers: [['content-type', 'application/json']],
      body: Buffer.from(JSON.stringify(result), 'utf8'),
    };
  }
  const r = result as APIGatewayProxyStructuredResultV2 & {
    multiValueHeaders?: Record<string, Array<string | number | boolean>>;
  };
  const headers: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(r.headers ?? {})) {
    if (value === undefined || value === null) continue;
    headers.push([name.toLowerCase(), String(value)]);
  }
  for (const [name, values] of Object.entries(r.multiValueHeaders ?? {})) {
    for (const value of values ?? []) headers.push([name.toLowerCase(), String(value)]);
  }
  for (const cookie of r.cookies ?? []) headers.push(['set-cookie', cookie]);
  if (!headers.some(([n]) => n === 'content-type') && r.body !== undefined && r.body !== '') {
    headers.push(['content-type', 'application/json']);
  }
  const body =
    r.body === undefined || r.body === null
      ? Buffer.alloc(0)
      : r.isBase64Encoded
        ? Buffer.from(r.body, 'base64')
        : Buffer.from(r.body, 'utf8');
  return { statusCode: Number(r.statusCode) || 200, headers, body };
}

/** API Gateway's own error answers (the function was not reached, failed, or timed out). */
export function gatewayError(statusCode: number, message: string, requestId?: string): HttpApiResponse {
  return {
    statusCode,
    headers: [
      ['content-type', 'application/json'],
      ...(requestId ? ([['apigw-requestid', requestId]] as Array<[string, string]>) : []),
    ],
    body: Buffer.from(JSON.stringify({ message }), 'utf8'),
  };
}

/** Write an API response to the Node response; repeated headers (Set-Cookie…) stay separate lines. */
export function writeHttpApiResponse(res: ServerResponse, response: HttpApiResponse, headOnly = false): void {
  const grouped = new Map<string, string[]>();
  for (const [name, value] of response.headers) {
    if (name === 'content-length' || name === 'transfer-encoding' || name === 'connection') continue;
    const list = grouped.get(name) ?? [];
    list.push(value);
    grouped.set(name, list);
  }
  for (const [name, values] of grouped) {
    res.setHeader(name, values.length === 1 && name !== 'set-cookie' ? values[0]! : values);
  }
  // RFC 9110 §8.6: no Content-Length (and no body) on 1xx, 204 and 304.
  const bodiless = response.statusCode < 200 || response.statusCode === 204 || response.statusCode === 304;
  if (!bodiless) res.setHeader('content-length', String(response.body.length));
  res.writeHead(response.statusCode);
  res.end(headOnly || bodiless ? undefined : response.body);
}

export type { IncomingHttpHeaders };
