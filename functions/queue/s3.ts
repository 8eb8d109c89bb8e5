/**
 * Amazon S3 for queued messages too large for SQS, built for Lambda: exactly PutObject, GetObject and
 * DeleteObject, each one request signed with Signature Version 4 (the payload's SHA-256 in
 * `x-amz-content-sha256`, as S3 requires) through ../aws/request.ts — region and credentials from the environment
 * Lambda sets, bounded, retried on a transient failure — instead of `@aws-sdk/client-s3` (~150 KB of the bundle
 * plus @smithy/core; even behind `import()` it cost ~28 ms of CPU at import, measured). The endpoint is
 * `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL` (addressed path-style: `endpoint/bucket/key`, as local servers
 * and moto want), else the bucket's virtual-hosted regional one (`bucket.s3.region.amazonaws.com`).
 */
import {
  type AwsAnswer,
  type AwsClientOptions,
  AwsError,
  awsClientOptionsFromEnv,
  boundedRequest,
  EndpointAgent,
  retryTransient,
  sha256,
  signV4,
  uriEncode,
} from '../aws/request.ts';

/** An object is a composed message: at most Lambda's 6 MB request, grown by MIME; anything longer is not ours. */
const MAX_OBJECT_BYTES = 16 * 1024 * 1024;
const TRANSIENT = new Set([
  'SlowDown',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'Throttling',
]);

export class S3 {
  readonly region: string;
  readonly #opts: AwsClientOptions;
  readonly #endpoint: URL | undefined;
  readonly #agents = new Map<string, EndpointAgent>();

  constructor(opts: AwsClientOptions) {
    this.region = opts.region;
    this.#opts = opts;
    this.#endpoint = opts.endpoint ? new URL(opts.endpoint) : undefined;
  }

  /** The object's URL (each path segment encoded once: S3 signs it as sent): path-style on a custom endpoint. */
  urlOf(bucket: string, key: string): URL {
    const path = key.split('/').map(uriEncode).join('/');
    if (this.#endpoint) {
      const base = this.#endpoint.href.replace(/\/+$/, '');
      return new URL(`${base}/${uriEncode(bucket)}/${path}`);
    }
    const domain = this.region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
    return new URL(`https://${bucket}.s3.${this.region}.${domain}/${path}`);
  }

  async putObject(input: {
    Bucket: string;
    Key: string;
    Body: Uint8Array;
    ContentType: string;
  }): Promise<void> {
    await this.#send('PUT', this.urlOf(input.Bucket, input.Key), input.Body, {
      'content-type': input.ContentType,
    });
  }

  async getObject(input: { Bucket: string; Key: string }): Promise<Uint8Array> {
    return (await this.#send('GET', this.urlOf(input.Bucket, input.Key))).body;
  }

  /** A missing object is not an error (S3 answers 204 either way). */
  async deleteObject(input: { Bucket: string; Key: string }): Promise<void> {
    await this.#send('DELETE', this.urlOf(input.Bucket, input.Key));
  }

  destroy(): void {
    for (const a of this.#agents.values()) a.destroy();
  }

  #send(method: string, url: URL, body: Uint8Array = new Uint8Array(0), extra: Record<string, string> = {}) {
    const o = this.#opts;
    let agent = this.#agents.get(url.origin);
    if (!agent) {
      agent = new EndpointAgent(url);
      this.#agents.set(url.origin, agent);
    }
    const a = agent;
    return retryTransient(Math.max(1, o.maxAttempts ?? 3), async () => {
      const headers: Record<string, string> = { ...extra, 'x-amz-content-sha256': sha256(body) };
      Object.assign(
        headers,
        signV4({
          method,
          url,
          headers,
          body,
          region: o.region,
          service: 's3',
          credentials: o.credentials,
          date: (o.now ?? (() => new Date()))(),
        }),
      );
      if (method === 'PUT') headers['content-length'] = String(body.length);
      const res = await boundedRequest(
        url,
        { method, headers, body, agent: a },
        {
          connectTimeoutMs: o.connectTimeoutMs ?? 2000,
          requestTimeoutMs: o.requestTimeoutMs ?? 10_000,
          maxResponseBytes: MAX_OBJECT_BYTES,
        },
      );
      return checked(res);
    });
  }
}

/** A 2xx answer as it is; otherwise S3's XML error (`<Code>`, `<Message>`) as an `AwsError`. */
function checked(res: AwsAnswer): AwsAnswer {
  if (res.status >= 200 && res.status < 300) return res;
  const xml = res.body.toString('utf8', 0, Math.min(res.body.length, 4096));
  const code =
    /<Code>([^<]{1,64})<\/Code>/.exec(xml)?.[1] ?? (res.status >= 500 ? 'InternalError' : 'UnknownError');
  const message = /<Message>([^<]{0,300})<\/Message>/.exec(xml)?.[1] || `HTTP ${res.status}`;
  throw new AwsError(code, message, {
    status: res.status,
    transient: res.status >= 500 || TRANSIENT.has(code),
  });
}

/** The client for this environment (region and credentials as Lambda sets them; throws `ConfigurationError`). */
export function s3FromEnv(
  env: NodeJS.ProcessEnv,
  opts: Omit<AwsClientOptions, 'region' | 'credentials' | 'endpoint'> = {},
): S3 {
  return new S3({ ...opts, ...awsClientOptionsFromEnv(env, 'AWS_ENDPOINT_URL_S3') });
}
