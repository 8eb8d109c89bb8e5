/**
 * Secrets Manager `GetSecretValue` (and `PutSecretValue`, the OAuth refresh-token write-back), built for Lambda:
 * one signed HTTPS POST (AWS JSON 1.1) per call through ../aws/request.ts — region and credentials from the
 * environment Lambda sets, no default provider chain, bounded, one retry of a transient failure. The endpoint is
 * `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL`, else the regional one.
 */
import {
  type AwsClientOptions,
  type AwsJsonProtocol,
  AwsJsonService,
  awsClientOptionsFromEnv,
} from '../aws/request.ts';

/** `node:crypto` at first use, not at import: it stays out of a cold start's init (docs/benchmarks.md). */
const crypto = () => process.getBuiltinModule('node:crypto');

export interface SecretValueOutput {
  SecretString?: string;
  VersionId?: string;
}

const SECRETS_MANAGER: AwsJsonProtocol = {
  service: 'secretsmanager',
  targetPrefix: 'secretsmanager',
  jsonVersion: '1.1',
  transientTypes: new Set([
    'ThrottlingException',
    'TooManyRequestsException',
    'RequestTimeout',
    'RequestTimeoutException',
    'InternalServiceError',
    'InternalFailure',
    'ServiceUnavailable',
  ]),
  // A secret value is at most 64 KB; the JSON around it is small. Anything longer is not an answer.
  maxResponseBytes: 1024 * 1024,
};

export class SecretsManager extends AwsJsonService {
  constructor(opts: AwsClientOptions) {
    super(SECRETS_MANAGER, opts);
  }

  async getSecretValue(secretId: string): Promise<SecretValueOutput> {
    const out = await this.client.call('GetSecretValue', { SecretId: secretId });
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
    const out = await this.client.call('PutSecretValue', {
      SecretId: secretId,
      SecretString: secretString,
      ClientRequestToken: crypto().randomUUID(),
    });
    return typeof out.VersionId === 'string' ? { VersionId: out.VersionId } : {};
  }
}

/**
 * The client for this environment: region and credentials from what Lambda sets. Throws `AwsError`
 * (`ConfigurationError`, permanent) when either is missing.
 */
export function secretsManagerFromEnv(env: NodeJS.ProcessEnv = process.env): SecretsManager {
  return new SecretsManager(awsClientOptionsFromEnv(env, 'AWS_ENDPOINT_URL_SECRETS_MANAGER'));
}
