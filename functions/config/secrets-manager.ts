/**
 * Secrets Manager `GetSecretValue` (and `PutSecretValue`, the OAuth refresh-token write-back), built for Lambda:
 * one signed HTTPS POST (AWS JSON 1.1, Signature Version 4)
 * over `node:https`, nothing else. Region and credentials come from the environment Lambda sets for every
 * function — `AWS_REGION`, and the execution role's `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
 * `AWS_SESSION_TOKEN` — so there is no default provider chain (SSO, ini files, IMDS, process credentials) to load
 * at a cold start: the full SDK client costs ~25 ms of CPU to import, i.e. ~170 ms of wall time at the 256 MB
 * share. The endpoint is `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL`, else the regional one.
 *
 * Retries: one more attempt (two in all, as the SDK client was configured) on a transient failure — network
 * error, timeout, throttling, 5xx. Errors keep the service's error type as `name` (`ResourceNotFoundException`,
 * `AccessDeniedException`, …) so callers classify them as they did the SDK's.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SecretsManagerOptions {
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
}

export interface SecretValueOutput {
  SecretString?: string;
  VersionId?: string;
}

/** A failed call. `name` is the service's error type, or `NetworkError` / `TimeoutError` / `ConfigurationError`. */
export class SecretsManagerError extends Error {
  override readonly name: string;
  readonly status: number | undefined;
  readonly transient: boolean;

  constructor(name: string, message: string, opts: { status?: number; transient: boolean; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = name;
    this.status = opts.status;
    this.transient = opts.transient;
  }
}

const TRANSIENT_TYPES = new Set([
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalServiceError',
  'InternalFailure',
  'ServiceUnavailable',
]);
/** A secret value is at most 64 KB; the JSON around it is small. Anything longer is not an answer. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

export function regionalEndpoint(region: string): string {
  return `https://secretsmanager.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}

const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

export interface SignInput {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string;
  region: string;
  service: string;
  credentials: AwsCredentials;
  date: Date;
}

/**
 * Signature Version 4 headers for a request with no query string: `x-amz-date`, `x-amz-security-token` (with a
 * session token) and `authorization`, signing every header given plus `host`.
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
    '',
    canonicalHeaders,
    signedHeaders,
    sha256(req.body),
  ].join('\n');
  const scope = `${day}/${req.region}/${req.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let key = hmac(`AWS4${req.credentials.secretAccessKey}`, day);
  for (const part of [req.region, req.service, 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
  const out: Record<string, string> = { 'x-amz-date': amzDate };
  if (req.credentials.sessionToken) out['x-amz-security-token'] = req.credentials.sessionToken;
  out.authorization =
    `AWS4-HMAC-SHA256 Credential=${req.credentials.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return out;
}

interface RawResponse {
  status: number;
  body: string;
}

export class SecretsManager {
  readonly region: string;
  readonly endpoint: URL;
  readonly #credentials: AwsCredentials;
  readonly #maxAttempts: number;
  readonly #connectTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #now: () => Date;
  readonly #agent: HttpAgent | HttpsAgent;

  constructor(opts: SecretsManagerOptions) {
    this.region = opts.region;
    this.endpoint = new URL(opts.endpoint ?? regionalEndpoint(opts.region));
    this.#credentials = opts.credentials;
    this.#maxAttempts = Math.max(1, opts.maxAttempts ?? 2);
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 2000;
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? 5000;
    this.#now = opts.now ?? (() => new Date());
    // One kept connection across invocations of a warm instance (idle sockets do not hold the event loop).
    this.#agent =
      this.endpoint.protocol === 'http:'
        ? new HttpAgent({ keepAlive: true, maxSockets: 4 })
        : new HttpsAgent({ keepAlive: true, maxSockets: 4 });
  }

  async getSecretValue(secretId: string): Promise<SecretValueOutput> {
    const out = await this.#call('GetSecretValue', { SecretId: secretId });
    const value: SecretValueOutput = {};
    if (typeof out.SecretString === 'string') value.SecretString = out.SecretString;
    if (typeof out.VersionId === 'string') value.VersionId = out.VersionId;
    return value;
  }

  /**
   * A new version, `AWSCURRENT`. One `ClientRequestToken` for every attempt (as the SDK does): a retry after a
   * lost answer cannot store a second version.
   */
  async putSecretValue(secretId: string, secretString: string): Promise<{ VersionId?: string }> {
    const out = await this.#call('PutSecretValue', {
      SecretId: secretId,
      SecretString: secretString,
      ClientRequestToken: randomUUID(),
    });
    return typeof out.VersionId === 'string' ? { VersionId: out.VersionId } : {};
  }

  async #call(operation: string, payload: Record<string, string>): Promise<Record<string, unknown>> {
    const body = JSON.stringify(payload);
    for (let attempt = 1; ; attempt++) {
      try {
        return parseOutput(await this.#post(`secretsmanager.${operation}`, body));
      } catch (e) {
        const err =
          e instanceof SecretsManagerError
            ? e
            : new SecretsManagerError('NetworkError', (e as Error).message, { transient: true, cause: e });
        if (!err.transient || attempt >= this.#maxAttempts) throw err;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  }

  #post(target: string, body: string): Promise<RawResponse> {
    const headers: Record<string, string> = {
      'content-type': 'application/x-amz-json-1.1',
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
        service: 'secretsmanager',
        credentials: this.#credentials,
        date: this.#now(),
      }),
    );
    headers['content-length'] = String(Buffer.byteLength(body));
    const send = this.endpoint.protocol === 'http:' ? httpRequest : httpsRequest;
    return new Promise<RawResponse>((resolve, reject) => {
      const req = send(this.endpoint, { method: 'POST', headers, agent: this.#agent });
      const fail = (name: string, message: string) => {
        req.destroy(new SecretsManagerError(name, message, { transient: true }));
      };
      const whole = setTimeout(
        () => fail('TimeoutError', `no answer within ${this.#requestTimeoutMs} ms`),
        this.#requestTimeoutMs,
      );
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        const t = setTimeout(
          () => fail('TimeoutError', `no connection within ${this.#connectTimeoutMs} ms`),
          this.#connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(t));
        socket.once('close', () => clearTimeout(t));
      });
      req.on('error', (e) => {
        clearTimeout(whole);
        reject(e);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) fail('NetworkError', 'the answer is too long');
          else chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(whole);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (e) => {
          clearTimeout(whole);
          reject(e);
        });
      });
      req.end(body);
    });
  }
}

/** The output object of a 2xx answer; otherwise throws the service's error. */
function parseOutput(res: RawResponse): Record<string, unknown> {
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(res.body || '{}') as Record<string, unknown>;
  } catch {
    // a proxy's HTML error page, a truncated body: classified by status below
  }
  if (res.status >= 200 && res.status < 300) return json;
  const rawType = typeof json.__type === 'string' ? json.__type : '';
  const type = rawType.split('#').pop() || (res.status >= 500 ? 'InternalServiceError' : 'UnknownError');
  const message =
    typeof json.message === 'string' ? json.message : typeof json.Message === 'string' ? json.Message : '';
  throw new SecretsManagerError(type, message || `HTTP ${res.status}`, {
    status: res.status,
    transient: res.status >= 500 || TRANSIENT_TYPES.has(type),
  });
}

/**
 * The client for this environment: region and credentials from what Lambda sets. Throws `SecretsManagerError`
 * (`ConfigurationError`, permanent) when either is missing.
 */
export function secretsManagerFromEnv(env: NodeJS.ProcessEnv = process.env): SecretsManager {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!region || !accessKeyId || !secretAccessKey) {
    const missing = [
      region ? '' : 'AWS_REGION',
      accessKeyId ? '' : 'AWS_ACCESS_KEY_ID',
      secretAccessKey ? '' : 'AWS_SECRET_ACCESS_KEY',
    ].filter(Boolean);
    throw new SecretsManagerError('ConfigurationError', `${missing.join(', ')} not set (Lambda sets them)`, {
      transient: false,
    });
  }
  const credentials: AwsCredentials = { accessKeyId, secretAccessKey };
  if (env.AWS_SESSION_TOKEN) credentials.sessionToken = env.AWS_SESSION_TOKEN;
  const endpoint = env.AWS_ENDPOINT_URL_SECRETS_MANAGER || env.AWS_ENDPOINT_URL;
  return new SecretsManager({ region, credentials, ...(endpoint ? { endpoint } : {}) });
}
