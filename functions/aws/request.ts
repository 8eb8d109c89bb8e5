/**
 * Calls to AWS services, built for Lambda: the JSON-protocol ones (Secrets Manager: AWS JSON 1.1; DynamoDB and
 * SQS: 1.0) as one `POST /` each, S3's object calls (../queue/s3.ts) as one request each, signed with Signature
 * Version 4 over `node:http(s)`, nothing else. The SDK's
 * clients cost ~25 ms of CPU to import (@smithy/core, the default provider chain), i.e. ~170 ms of wall time at
 * the 256 MB share; the calls we make need none of it.
 *
 * - Region and credentials come from the environment Lambda sets for every function (`AWS_REGION`, and the
 *   execution role's `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`): no provider chain (SSO,
 *   ini files, IMDS, process credentials). The endpoint is `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`,
 *   else the regional one (as the SDK reads them).
 * - Bounded: a connect timeout and a whole-request timeout per attempt, and a maximum answer size.
 * - Retries: one more attempt (two in all, as our SDK clients were configured) on a transient failure — network
 *   error, timeout, throttling, 5xx. Errors keep the service's error type as `name`
 *   (`ResourceNotFoundException`, `ConditionalCheckFailedException`, …) so callers classify them as they did the
 *   SDK's.
 */
import type { Agent as HttpAgent, IncomingHttpHeaders } from 'node:http';

/** `node:crypto` at first use, not at import: it stays out of a cold start's init (docs/benchmarks.md). */
const crypto = () => process.getBuiltinModule('node:crypto');

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** A failed call. `name` is the service's error type, or `NetworkError` / `TimeoutError` / `ConfigurationError`. */
export class AwsError extends Error {
  override readonly name: string;
  readonly status: number | undefined;
  readonly transient: boolean;
  /** The service's error answer (JSON), e.g. DynamoDB's `Item` of a failed condition with `ALL_OLD`. */
  readonly output: Record<string, unknown> | undefined;

  constructor(
    name: string,
    message: string,
    opts: { status?: number; transient: boolean; cause?: unknown; output?: Record<string, unknown> },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = name;
    this.status = opts.status;
    this.transient = opts.transient;
    this.output = opts.output;
  }
}

export const sha256 = (data: string | Uint8Array) => crypto().createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) =>
  crypto().createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding: everything but `A-Z a-z 0-9 - _ . ~` as %XX. */
export const uriEncode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function canonicalQuery(url: URL): string {
  return [...url.searchParams]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

export interface SignInput {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string | Uint8Array;
  region: string;
  service: string;
  credentials: AwsCredentials;
  date: Date;
}

/**
 * Signature Version 4 headers: `x-amz-date`, `x-amz-security-token` (with a session token) and `authorization`,
 * signing every header given plus `host`. The path is signed as given (the caller encodes it: S3 keys are not
 * encoded twice); the query string, if any, sorted and encoded as SigV4 wants.
 */
export function signV4(req: SignInput): Record<string, string> {
  const amzDate = req.date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = { ...req.headers, host: req.url.host, 'x-amz-date': amzDate };
  if (req.credentials.sessionToken) headers['x-amz-security-token'] = req.credentials.sessionToken;
  const names = Object.keys(headers)
    .map((n) => n.toLowerCase())
    .sort();
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const canonicalHeaders = names.map((n) => `${n}:${lower[n]!.trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const canonical = [
    req.method,
    req.url.pathname || '/',
    canonicalQuery(req.url),
    canonicalHeaders,
    signedHeaders,
    sha256(req.body),
  ].join('\n');
  const scope = `${day}/${req.region}/${req.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let key = hmac(`AWS4${req.credentials.secretAccessKey}`, day);
  for (const part of [req.region, req.service, 'aws4_request']) key = hmac(key, part);
  const signature = crypto().createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
  const out: Record<string, string> = { 'x-amz-date': amzDate };
  if (req.credentials.sessionToken) out['x-amz-security-token'] = req.credentials.sessionToken;
  out.authorization =
    `AWS4-HMAC-SHA256 Credential=${req.credentials.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return out;
}

/** What tells one JSON-protocol service from another. */
export interface AwsJsonProtocol {
  /** The signing name and the first label of the regional host: `secretsmanager`, `dynamodb`. */
  service: string;
  /** `X-Amz-Target` is `<targetPrefix>.<Operation>`. */
  targetPrefix: string;
  jsonVersion: '1.0' | '1.1';
  /** Error types (besides any 5xx) that are worth one more attempt. */
  transientTypes: ReadonlySet<string>;
  /** An answer longer than this is not one (a transient `NetworkError`). */
  maxResponseBytes: number;
}

export interface AwsClientOptions {
  region: string;
  credentials: AwsCredentials;
  /** Default: the regional endpoint. */
  endpoint?: string;
  /** Default 2 (one retry of a transient failure). */
  maxAttempts?: number;
  /** TCP (+ TLS) connect, per attempt. Default 2 000 ms. */
  connectTimeoutMs?: number;
  /** Whole request, per attempt. Default 5 000 ms. */
  requestTimeoutMs?: number;
  now?: () => Date;
  /** Told the operation of every call (once per call, not per attempt): tests and the bench count them. */
  onCall?: (operation: string) => void;
}

export function regionalEndpoint(service: string, region: string): string {
  return `https://${service}.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}

export interface RequestBounds {
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  maxResponseBytes: number;
}

export interface AwsAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type HttpModule = Pick<typeof import('node:http'), 'Agent' | 'request'>;

/**
 * node:http or node:https, loaded at the first request, not at import: a cold start's init does not pay for them
 * (with node:tls, 16 built-in modules, ~1.5 ms of init CPU measured with the bundled handler); the first request
 * loads them after init.
 */
function httpModule(url: URL): Promise<HttpModule> {
  return url.protocol === 'http:' ? import('node:http') : (import('node:https') as Promise<HttpModule>);
}

/** A keep-alive agent for one endpoint (one kept connection across invocations of a warm instance), made at first use. */
export class EndpointAgent {
  #agent: Promise<HttpAgent> | undefined;
  constructor(readonly url: URL) {}
  get(): Promise<HttpAgent> {
    // Idle sockets do not hold the event loop.
    this.#agent ??= httpModule(this.url).then((m) => new m.Agent({ keepAlive: true, maxSockets: 4 }));
    return this.#agent;
  }
  destroy(): void {
    void this.#agent?.then((a) => a.destroy());
  }
}

/**
 * One HTTP(S) request with a connect timeout, a whole-request timeout and a maximum answer size; a timeout, a
 * too-long answer and a network error are a transient `AwsError`.
 */
export async function boundedRequest(
  url: URL,
  init: {
    method: string;
    headers: Record<string, string>;
    body: string | Uint8Array;
    agent: EndpointAgent;
  },
  bounds: RequestBounds,
): Promise<AwsAnswer> {
  const [{ request }, agent] = await Promise.all([httpModule(url), init.agent.get()]);
  return new Promise<AwsAnswer>((resolve, reject) => {
    const req = request(url, { method: init.method, headers: init.headers, agent });
    const fail = (name: string, message: string) => {
      req.destroy(new AwsError(name, message, { transient: true }));
    };
    const whole = setTimeout(
      () => fail('TimeoutError', `no answer within ${bounds.requestTimeoutMs} ms`),
      bounds.requestTimeoutMs,
    );
    req.on('socket', (socket) => {
      if (!socket.connecting) return;
      const t = setTimeout(
        () => fail('TimeoutError', `no connection within ${bounds.connectTimeoutMs} ms`),
        bounds.connectTimeoutMs,
      );
      socket.once('connect', () => clearTimeout(t));
      socket.once('close', () => clearTimeout(t));
    });
    const failed = (e: Error) => {
      clearTimeout(whole);
      reject(
        e instanceof AwsError ? e : new AwsError('NetworkError', e.message, { transient: true, cause: e }),
      );
    };
    req.on('error', failed);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > bounds.maxResponseBytes) fail('NetworkError', 'the answer is too long');
        else chunks.push(c);
      });
      res.on('end', () => {
        clearTimeout(whole);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', failed);
    });
    req.end(init.body);
  });
}

/** `attempt` up to `maxAttempts` times while it fails with a transient `AwsError` (50–150 ms apart). */
export async function retryTransient<T>(maxAttempts: number, attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof AwsError) || !e.transient || n >= maxAttempts) throw e;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
  }
}

/** One service's client: `call(operation, input)` → the answer's JSON, or throws `AwsError`. */
export class AwsJsonClient {
  readonly region: string;
  readonly endpoint: URL;
  readonly #protocol: AwsJsonProtocol;
  readonly #credentials: AwsCredentials;
  readonly #maxAttempts: number;
  readonly #connectTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #now: () => Date;
  readonly #onCall: ((operation: string) => void) | undefined;
  readonly #agent: EndpointAgent;

  constructor(protocol: AwsJsonProtocol, opts: AwsClientOptions) {
    this.#protocol = protocol;
    this.region = opts.region;
    this.endpoint = new URL(opts.endpoint ?? regionalEndpoint(protocol.service, opts.region));
    this.#credentials = opts.credentials;
    this.#maxAttempts = Math.max(1, opts.maxAttempts ?? 2);
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 2000;
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? 5000;
    this.#now = opts.now ?? (() => new Date());
    this.#onCall = opts.onCall;
    this.#agent = new EndpointAgent(this.endpoint);
  }

  /** The same body on every attempt (so a token in it, like Secrets Manager's ClientRequestToken, is kept). */
  async call(operation: string, input: object): Promise<Record<string, unknown>> {
    this.#onCall?.(operation);
    const body = JSON.stringify(input);
    const target = `${this.#protocol.targetPrefix}.${operation}`;
    return retryTransient(this.#maxAttempts, async () => this.#parse(await this.#post(target, body)));
  }

  /** Closes the kept connections. */
  destroy(): void {
    this.#agent.destroy();
  }

  #post(target: string, body: string): Promise<AwsAnswer> {
    const headers: Record<string, string> = {
      'content-type': `application/x-amz-json-${this.#protocol.jsonVersion}`,
      'x-amz-target': target,
    };
    Object.assign(
      headers,
      signV4({
        method: 'POST',
        url: this.endpoint,
        headers,
        body,
        region: this.region,
        service: this.#protocol.service,
        credentials: this.#credentials,
        date: this.#now(),
      }),
    );
    headers['content-length'] = String(Buffer.byteLength(body));
    return boundedRequest(
      this.endpoint,
      { method: 'POST', headers, body, agent: this.#agent },
      {
        connectTimeoutMs: this.#connectTimeoutMs,
        requestTimeoutMs: this.#requestTimeoutMs,
        maxResponseBytes: this.#protocol.maxResponseBytes,
      },
    );
  }

  /** The output object of a 2xx answer; otherwise throws the service's error. */
  #parse(res: AwsAnswer): Record<string, unknown> {
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(res.body.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      // a proxy's HTML error page, a truncated body: classified by status below
    }
    if (res.status >= 200 && res.status < 300) return json;
    // `x-amzn-ErrorType: Type:http://…` first (as the SDK reads it), else the body's `__type`: `ns#Type`.
    const header = res.headers['x-amzn-errortype'];
    const rawType =
      (typeof header === 'string' ? header.split(':')[0] : '') ||
      (typeof json.__type === 'string' ? json.__type : '');
    const type = rawType.split('#').pop() || (res.status >= 500 ? 'InternalServiceError' : 'UnknownError');
    const message =
      typeof json.message === 'string' ? json.message : typeof json.Message === 'string' ? json.Message : '';
    throw new AwsError(type, message || `HTTP ${res.status}`, {
      status: res.status,
      transient: res.status >= 500 || this.#protocol.transientTypes.has(type),
      output: json,
    });
  }
}

/**
 * Region, credentials and endpoint from the environment Lambda sets. `endpointVar` is the service's own
 * override (`AWS_ENDPOINT_URL_DYNAMODB`). Throws `AwsError` (`ConfigurationError`, permanent) when the region or
 * a credential is missing.
 */
export function awsClientOptionsFromEnv(
  env: NodeJS.ProcessEnv,
  endpointVar: string,
): Pick<AwsClientOptions, 'region' | 'credentials' | 'endpoint'> {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!region || !accessKeyId || !secretAccessKey) {
    const missing = [
      region ? '' : 'AWS_REGION',
      accessKeyId ? '' : 'AWS_ACCESS_KEY_ID',
      secretAccessKey ? '' : 'AWS_SECRET_ACCESS_KEY',
    ].filter(Boolean);
    throw new AwsError('ConfigurationError', `${missing.join(', ')} not set (Lambda sets them)`, {
      transient: false,
    });
  }
  const credentials: AwsCredentials = { accessKeyId, secretAccessKey };
  if (env.AWS_SESSION_TOKEN) credentials.sessionToken = env.AWS_SESSION_TOKEN;
  const endpoint = env[endpointVar]?.trim() || env.AWS_ENDPOINT_URL?.trim();
  return { region, credentials, ...(endpoint ? { endpoint } : {}) };
}

/** A JSON-protocol service's client: its calls go through `this.client` (one `AwsJsonClient`). */
export abstract class AwsJsonService {
  protected readonly client: AwsJsonClient;

  constructor(protocol: AwsJsonProtocol, opts: AwsClientOptions) {
    this.client = new AwsJsonClient(protocol, opts);
  }

  get endpoint(): URL {
    return this.client.endpoint;
  }

  /** Closes the kept connections. */
  destroy(): void {
    this.client.destroy();
  }
}
