/**
 * Secrets Manager access with a module-scope cache: one fetch per cold start, a TTL, one shared in-flight
 * request for concurrent callers, and an explicit refresh (used after an SMTP 535 to pick up a rotation).
 * The client is ./secrets-manager.ts (region and credentials from the Lambda environment;
 * `AWS_ENDPOINT_URL_SECRETS_MANAGER` overrides the endpoint: tests, local dev).
 * Its failures are neutral (`SecretError`: which secret, transient or not): each caller names what the failure
 * stops (the SMTP settings: the mail server unavailable; the CAPTCHA: verification unavailable).
 */
import { type SecretsManager, type SecretValueOutput, secretsManagerFromEnv } from './secrets-manager.ts';

export interface SecretValue {
  id: string;
  value: string;
  versionId?: string;
  fetchedAt: number;
}

export interface SecretStoreOptions {
  ttlMs?: number;
  client?: Pick<SecretsManager, 'getSecretValue' | 'putSecretValue'>;
  /** Where the default client reads region, credentials and endpoint. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

/** `SECRET_TTL_SECONDS` (default 300) in milliseconds. */
export function secretTtlFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SECRET_TTL_SECONDS;
  const n = raw === undefined || raw === '' ? 300 : Number(raw);
  return Number.isFinite(n) && n >= 0 ? n * 1000 : 300_000;
}

/** A secret that could not be read or written. `transient`: Secrets Manager may answer later (throttling, 5xx). */
export class SecretError extends Error {
  override readonly name = 'SecretError';
  /** Seconds after which a transient failure is worth another try. */
  readonly retryAfter = 5;

  constructor(
    readonly secretId: string,
    readonly transient: boolean,
    detail: string,
    cause?: unknown,
  ) {
    super(detail, cause === undefined ? undefined : { cause });
  }
}

export class SecretStore {
  readonly ttlMs: number;
  #client: Pick<SecretsManager, 'getSecretValue' | 'putSecretValue'> | undefined;
  readonly #env: NodeJS.ProcessEnv;
  readonly #now: () => number;
  readonly #cache = new Map<string, SecretValue>();
  readonly #inflight = new Map<string, Promise<SecretValue>>();
  /** Number of GetSecretValue calls made (observability, tests). */
  fetches = 0;
  /** Times a stale value was served because a refresh failed transiently. */
  staleServed = 0;
  /** Number of PutSecretValue calls that succeeded. */
  writes = 0;

  constructor(opts: SecretStoreOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 300_000;
    this.#client = opts.client;
    this.#env = opts.env ?? process.env;
    this.#now = opts.now ?? Date.now;
  }

  /** Created at the first fetch (a missing region or credential is that fetch's error). */
  get client(): Pick<SecretsManager, 'getSecretValue' | 'putSecretValue'> {
    this.#client ??= secretsManagerFromEnv(this.#env);
    return this.#client;
  }

  /**
   * The cached value while fresh; otherwise one fetch shared by every concurrent caller. When the TTL has run
   * out and Secrets Manager is temporarily unavailable, the last good value is served (stale-if-error): an outage
   * of the secret store must not stop mail that the cached credentials can still send. A 535 forces `refresh()`.
   */
  get(id: string): Promise<SecretValue> {
    const cached = this.#cache.get(id);
    if (cached && this.#now() - cached.fetchedAt < this.ttlMs) return Promise.resolve(cached);
    if (!cached) return this.#fetch(id);
    return this.#fetch(id).catch((e: unknown) => {
      if (e instanceof SecretError && e.transient) {
        this.staleServed++;
        return cached;
      }
      throw e;
    });
  }

  /** Fetch again now (joins a fetch already in flight). */
  refresh(id: string): Promise<SecretValue> {
    this.#cache.delete(id);
    return this.#fetch(id);
  }

  /**
   * Store a new version (PutSecretValue; the OAuth refresh-token write-back, allowed by IAM only when enabled).
   * The cached value is left as it is: the next fetch after the TTL reads the new version.
   */
  async put(id: string, value: string): Promise<void> {
    try {
      await this.client.putSecretValue(id, value);
    } catch (e) {
      throw secretError(id, e, 'write');
    }
    this.writes++;
  }

  #fetch(id: string): Promise<SecretValue> {
    const running = this.#inflight.get(id);
    if (running) return running;
    const p = this.#get(id).finally(() => this.#inflight.delete(id));
    this.#inflight.set(id, p);
    return p;
  }

  async #get(id: string): Promise<SecretValue> {
    this.fetches++;
    let out: SecretValueOutput;
    try {
      out = await this.client.getSecretValue(id);
    } catch (e) {
      throw secretError(id, e);
    }
    if (typeof out.SecretString !== 'string') {
      throw new SecretError(id, false, `secret ${id} has no SecretString (binary secrets are not supported)`);
    }
    const value: SecretValue = { id, value: out.SecretString, fetchedAt: this.#now() };
    if (out.VersionId) value.versionId = out.VersionId;
    this.#cache.set(id, value);
    return value;
  }
}

const PERMANENT = new Set([
  'ResourceNotFoundException',
  'AccessDeniedException',
  'AccessDeniedError',
  'InvalidParameterException',
  'InvalidRequestException',
  'DecryptionFailure',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignature',
  // ./secrets-manager.ts: no region or credentials in the environment
  'ConfigurationError',
]);

function secretError(id: string, e: unknown, verb: 'read' | 'write' = 'read'): SecretError {
  const name = (e as { name?: string })?.name ?? 'Error';
  if (PERMANENT.has(name)) return new SecretError(id, false, `cannot ${verb} secret ${id}: ${name}`, e);
  return new SecretError(id, true, `Secrets Manager is unavailable (${name}); try again later`, e);
}
