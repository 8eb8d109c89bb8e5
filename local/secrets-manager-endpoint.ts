/**
 * A small local AWS Secrets Manager endpoint speaking the real wire protocol (AWS JSON 1.1:
 * `POST /` with `X-Amz-Target: secretsmanager.<Operation>`), so the real `@aws-sdk/client-secrets-manager`
 * (and the AWS CLI) work against it unchanged via `AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:<port>`.
 *
 * Operations: GetSecretValue, CreateSecret, PutSecretValue, DescribeSecret, ListSecrets, DeleteSecret.
 * Versions and staging labels follow AWS: a new value becomes `AWSCURRENT`, the previous one `AWSPREVIOUS`.
 * Signatures are NOT verified (any fake credentials do). Errors use AWS's shape: HTTP 400 with
 * `{"__type":"ResourceNotFoundException","message":"…"}`.
 *
 * Programmatic use (tests, the local dev server):
 * ```ts
 * const sm = await startSecretsManagerEndpoint({ secrets: { 'smtp': JSON.stringify({...}) } });
 * process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.url;
 * sm.setSecret('smtp', newValue);        // rotation: new AWSCURRENT version
 * sm.calls('GetSecretValue', 'smtp');    // how many times the function fetched it
 * sm.failNext({ type: 'ThrottlingException', status: 400 });  // fault injection
 * await sm.close();
 * ```
 * CLI: `tsx local/secrets-manager-endpoint.ts [--port 4584] [--host 127.0.0.1] [--secret id=value | id=@file]…`
 *
 * DEV ONLY: secrets are kept in memory in clear text; bind to loopback.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { LocalAwsEndpoint, readJsonObject, sendAwsJson } from './aws-json-http.ts';

export interface SecretVersion {
  versionId: string;
  value: string;
  created: Date;
  stages: string[];
}

export interface StoredSecret {
  name: string;
  arn: string;
  description?: string;
  created: Date;
  versions: SecretVersion[];
  deleted?: Date;
}

export interface SecretsManagerEndpointOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  region?: string;
  accountId?: string;
  /** Initial secrets: id → SecretString (objects are JSON-encoded). */
  secrets?: Record<string, string | object>;
  /** Called once per request with a one-line summary (never the secret value). */
  log?: (line: string) => void;
}

export interface CallRecord {
  operation: string;
  secretId?: string;
  status: number;
  at: Date;
}

export interface InjectedFailure {
  /** AWS error type, e.g. `ThrottlingException`, `InternalServiceError`. */
  type: string;
  status?: number;
  message?: string;
  /** Only for this operation (default: any). */
  operation?: string;
  /** How many requests fail (default 1). */
  times?: number;
}

const MAX_BODY = 256 * 1024;

class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export class SecretsManagerEndpoint extends LocalAwsEndpoint {
  readonly region: string;
  readonly accountId: string;
  readonly #secrets = new Map<string, StoredSecret>();
  readonly #calls: CallRecord[] = [];
  readonly #failures: Array<Required<Pick<InjectedFailure, 'type' | 'status' | 'times'>> & InjectedFailure> =
    [];
  readonly #log: ((line: string) => void) | undefined;

  constructor(opts: SecretsManagerEndpointOptions = {}) {
    super();
    this.region = opts.region ?? 'us-east-1';
    this.accountId = opts.accountId ?? '000000000000';
    this.#log = opts.log;
    for (const [id, value] of Object.entries(opts.secrets ?? {})) this.setSecret(id, value);
  }

  /**
   * Create the secret, or store a new version of it (a rotation): the new version becomes `AWSCURRENT`,
   * the old current one `AWSPREVIOUS`. Returns the ARN and the new version id.
   */
  setSecret(
    id: string,
    value: string | object,
    versionId: string = randomUUID(),
  ): { arn: string; versionId: string } {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    let secret = this.#find(id);
    if (!secret) {
      const name = id.startsWith('arn:') ? (id.split(':secret:')[1] ?? id) : id;
      secret = {
        name,
        arn: `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:${name}-${randomBytes(3).toString('hex')}`,
        created: new Date(),
        versions: [],
      };
      this.#secrets.set(name, secret);
    }
    for (const v of secret.versions) {
      v.stages = v.stages.filter((s) => s !== 'AWSPREVIOUS');
      if (v.stages.includes('AWSCURRENT'))
        v.stages = [...v.stages.filter((s) => s !== 'AWSCURRENT'), 'AWSPREVIOUS'];
    }
    secret.versions = secret.versions.filter((v) => v.stages.length > 0);
    secret.versions.push({ versionId, value: text, created: new Date(), stages: ['AWSCURRENT'] });
    return { arn: secret.arn, versionId };
  }

  /** Alias of `setSecret` for readability in rotation tests. */
  rotateSecret(id: string, value: string | object): { arn: string; versionId: string } {
    return this.setSecret(id, value);
  }

  deleteSecret(id: string): boolean {
    const s = this.#find(id);
    if (!s) return false;
    this.#secrets.delete(s.name);
    return true;
  }

  /** The current value (AWSCURRENT), or undefined. */
  getSecret(id: string): string | undefined {
    return this.#find(id)?.versions.find((v) => v.stages.includes('AWSCURRENT'))?.value;
  }

  arnOf(id: string): string | undefined {
    return this.#find(id)?.arn;
  }

  /** Number of requests, optionally filtered by operation and secret id (name or ARN as sent). */
  calls(operation?: string, secretId?: string): number {
    return this.#calls.filter(
      (c) =>
        (!operation || c.operation === operation) &&
        (!secretId || c.secretId === secretId || this.#find(c.secretId ?? '')?.name === secretId),
    ).length;
  }

  get callLog(): readonly CallRecord[] {
    return this.#calls;
  }

  resetCalls(): void {
    this.#calls.length = 0;
  }

  /** Make the next request(s) fail with an AWS error (throttling, 5xx...). */
  failNext(f: InjectedFailure): void {
    this.#failures.push({ ...f, status: f.status ?? 400, times: f.times ?? 1 });
  }

  #find(id: string): StoredSecret | undefined {
    const direct = this.#secrets.get(id);
    if (direct) return direct;
    for (const s of this.#secrets.values()) {
      // Full ARN, or the ARN without its 6-character random suffix (partial ARN), as AWS accepts.
      if (s.arn === id || s.arn.slice(0, -7) === id) return s;
    }
    return undefined;
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let operation = '(none)';
    let secretId: string | undefined;
    let status = 200;
    try {
      const target = String(req.headers['x-amz-target'] ?? '');
      if (req.method !== 'POST' || !target.startsWith('secretsmanager.')) {
        throw new AwsError(
          'UnknownOperationException',
          'expected POST with X-Amz-Target: secretsmanager.<Operation>',
        );
      }
      operation = target.slice('secretsmanager.'.length);
      const body = await readJson(req);
      secretId =
        typeof body.SecretId === 'string'
          ? body.SecretId
          : typeof body.Name === 'string'
            ? body.Name
            : undefined;
      const failure = this.#failures.find((f) => !f.operation || f.operation === operation);
      if (failure) {
        failure.times--;
        if (failure.times <= 0) this.#failures.splice(this.#failures.indexOf(failure), 1);
        throw new AwsError(failure.type, failure.message ?? `injected ${failure.type}`, failure.status);
      }
      const out = this.#dispatch(operation, body);
      this.#send(res, 200, out);
    } catch (e) {
      const err = e instanceof AwsError ? e : new AwsError('InternalServiceError', 'internal error', 500);
      status = err.status;
      this.#send(res, err.status, { __type: err.type, message: err.message }, err.type);
    } finally {
      this.#calls.push({ operation, ...(secretId ? { secretId } : {}), status, at: new Date() });
      this.#log?.(`secretsmanager ${operation} ${secretId ?? ''} → ${status}`);
    }
  }

  #send(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
    sendAwsJson(res, status, body, 'application/x-amz-json-1.1', errorType);
  }

  #dispatch(operation: string, body: Record<string, unknown>): unknown {
    const str = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : undefined);
    const need = (k: string) => {
      const v = str(k);
      if (!v) throw new AwsError('InvalidParameterException', `${k} is required`);
      return v;
    };
    const notFound = (id: string) =>
      new AwsError('ResourceNotFoundException', `Secrets Manager can't find the specified secret. (${id})`);
    switch (operation) {
      case 'GetSecretValue': {
        const id = need('SecretId');
        const s = this.#find(id);
        if (!s) throw notFound(id);
        const versionId = str('VersionId');
        const stage = str('VersionStage') ?? (versionId ? undefined : 'AWSCURRENT');
        const v = s.versions.find(
          (x) => (!versionId || x.versionId === versionId) && (!stage || x.stages.includes(stage)),
        );
        if (!v) {
          throw new AwsError(
            'ResourceNotFoundException',
            "Secrets Manager can't find the specified secret value for the given version/stage.",
          );
        }
        return {
          ARN: s.arn,
          Name: s.name,
          SecretString: v.value,
          VersionId: v.versionId,
          VersionStages: v.stages,
          VersionIdsToStages: Object.fromEntries(s.versions.map((x) => [x.versionId, x.stages])),
          CreatedDate: v.created.getTime() / 1000,
        };
      }
      case 'CreateSecret': {
        const name = need('Name');
        if (this.#find(name))
          throw new AwsError('ResourceExistsException', `the secret ${name} already exists.`);
        const value = str('SecretString');
        if (value === undefined)
          throw new AwsError('InvalidRequestException', 'SecretString is required here');
        const { arn, versionId } = this.setSecret(name, value, str('ClientRequestToken'));
        const d = str('Description');
        if (d) this.#find(name)!.description = d;
        return { ARN: arn, Name: name, VersionId: versionId };
      }
      case 'PutSecretValue': {
        const id = need('SecretId');
        const s = this.#find(id);
        if (!s) throw notFound(id);
        const value = str('SecretString');
        if (value === undefined)
          throw new AwsError('InvalidRequestException', 'SecretString is required here');
        const { versionId } = this.setSecret(s.name, value, str('ClientRequestToken'));
        return { ARN: s.arn, Name: s.name, VersionId: versionId, VersionStages: ['AWSCURRENT'] };
      }
      case 'DescribeSecret': {
        const id = need('SecretId');
        const s = this.#find(id);
        if (!s) throw notFound(id);
        return describe(s);
      }
      case 'ListSecrets':
        return { SecretList: [...this.#secrets.values()].map(describe) };
      case 'DeleteSecret': {
        const id = need('SecretId');
        const s = this.#find(id);
        if (!s) throw notFound(id);
        this.#secrets.delete(s.name);
        return { ARN: s.arn, Name: s.name, DeletionDate: Date.now() / 1000 };
      }
      default:
        throw new AwsError(
          'UnknownOperationException',
          `operation ${operation} is not supported by this endpoint`,
        );
    }
  }
}

function describe(s: StoredSecret) {
  return {
    ARN: s.arn,
    Name: s.name,
    ...(s.description ? { Description: s.description } : {}),
    CreatedDate: s.created.getTime() / 1000,
    VersionIdsToStages: Object.fromEntries(s.versions.map((x) => [x.versionId, x.stages])),
  };
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return readJsonObject(
    req,
    MAX_BODY,
    () => new AwsError('InvalidRequestException', 'request body too large'),
    () => new AwsError('SerializationException', 'the request body is not a JSON object'),
  );
}

/** Start an endpoint on `host:port` (default 127.0.0.1, ephemeral port). */
export async function startSecretsManagerEndpoint(
  opts: SecretsManagerEndpointOptions = {},
): Promise<SecretsManagerEndpoint> {
  return new SecretsManagerEndpoint(opts).listen(opts.host, opts.port);
}

async function main(argv: string[]): Promise<void> {
  const secrets: Record<string, string> = {};
  let port = 4584;
  let host = '127.0.0.1';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i] ?? '';
    if (a === '--port') port = Number(next());
    else if (a === '--host') host = next();
    else if (a === '--secret') {
      const spec = next();
      const eq = spec.indexOf('=');
      if (eq <= 0) throw new Error(`--secret takes id=value or id=@file, got ${spec}`);
      const v = spec.slice(eq + 1);
      secrets[spec.slice(0, eq)] = v.startsWith('@') ? readFileSync(v.slice(1), 'utf8') : v;
    } else throw new Error(`unknown argument ${a}`);
  }
  const sm = await startSecretsManagerEndpoint({ host, port, secrets, log: (l) => console.log(l) });
  console.log(`Secrets Manager endpoint: ${sm.url}  (export AWS_ENDPOINT_URL_SECRETS_MANAGER=${sm.url})`);
  const stop = () => void sm.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: Error) => {
    console.error(e.message);
    process.exit(1);
  });
}
