/**
 * functions/config/secrets-manager.ts, the Secrets Manager client built for Lambda (over functions/aws/request.ts):
 * - its Signature Version 4 is the SDK's: the real @aws-sdk/client-secrets-manager sends a request to a
 *   recording server, and our signer, given the same signed headers, body and time, produces the same
 *   Authorization header, byte for byte;
 * - against local/secrets-manager-endpoint.ts (the real wire protocol): values, error types, the retry of a
 *   transient failure (and none of a permanent one), timeouts, and region/credentials from the environment only.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsError } from '../../functions/aws/request.ts';
import { SecretsManager, secretsManagerFromEnv } from '../../functions/config/secrets-manager.ts';
import {
  type SecretsManagerEndpoint,
  startSecretsManagerEndpoint,
} from '../../local/secrets-manager-endpoint.ts';
import {
  LAMBDA_ENV,
  type Recorder,
  signLikeSdk,
  startRecorder,
  TEST_CREDENTIALS,
} from '../support/sigv4-parity.ts';

const credentials = TEST_CREDENTIALS;

let recorder: Recorder;
let sm: SecretsManagerEndpoint;

beforeAll(async () => {
  recorder = await startRecorder('application/x-amz-json-1.1', () => ({
    Name: 'prod/smtp',
    SecretString: '{"a":1}',
    VersionId: 'v-1',
  }));
  sm = await startSecretsManagerEndpoint({ secrets: { smtp: { host: 'mail.example.com' }, written: 'v0' } });
});

afterAll(async () => {
  await recorder.close();
  await sm.close();
});

describe('Signature Version 4', () => {
  for (const withToken of [true, false]) {
    it(`matches the AWS SDK's signature for the same request${withToken ? ' (session token)' : ''}`, async () => {
      const creds = withToken ? credentials : { ...credentials, sessionToken: undefined };
      const sdk = new SecretsManagerClient({
        region: 'eu-west-1',
        credentials: creds,
        endpoint: recorder.url,
      });
      recorder.recorded.length = 0;
      const out = await sdk.send(new GetSecretValueCommand({ SecretId: 'prod/smtp' }));
      sdk.destroy();
      expect(out.SecretString).toBe('{"a":1}');
      const req = recorder.recorded[0]!;
      const ours = signLikeSdk(req, recorder.url, {
        region: 'eu-west-1',
        service: 'secretsmanager',
        credentials: withToken ? credentials : { ...credentials, sessionToken: undefined },
      });
      expect(ours.authorization).toBe(String(req.headers.authorization));
      expect(ours['x-amz-security-token']).toBe(withToken ? credentials.sessionToken : undefined);
    });
  }

  it('sends what the service expects: JSON 1.1, the GetSecretValue target, the secret id, a signature', async () => {
    recorder.recorded.length = 0;
    const client = new SecretsManager({ region: 'eu-west-1', credentials, endpoint: recorder.url });
    expect(await client.getSecretValue('prod/smtp')).toEqual({ SecretString: '{"a":1}', VersionId: 'v-1' });
    const req = recorder.recorded[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/');
    expect(req.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(req.headers['x-amz-target']).toBe('secretsmanager.GetSecretValue');
    expect(req.headers['x-amz-security-token']).toBe(credentials.sessionToken);
    expect(JSON.parse(req.body)).toEqual({ SecretId: 'prod/smtp' });
    expect(String(req.headers.authorization)).toMatch(
      /^AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY000001\/\d{8}\/eu-west-1\/secretsmanager\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=[0-9a-f]{64}$/,
    );
  });
});

describe('against the local Secrets Manager endpoint', () => {
  const client = () => new SecretsManager({ region: 'us-east-1', credentials, endpoint: sm.url });

  it('reads the current value and version', async () => {
    const out = await client().getSecretValue('smtp');
    expect(JSON.parse(out.SecretString!)).toEqual({ host: 'mail.example.com' });
    expect(out.VersionId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('stores a new version with PutSecretValue, retrying with the same ClientRequestToken', async () => {
    const c = client();
    const put = await c.putSecretValue('written', '{"host":"mail2.example.com"}');
    const now = await c.getSecretValue('written');
    expect(now).toEqual({ SecretString: '{"host":"mail2.example.com"}', VersionId: put.VersionId });
    // The token is the idempotency key: both attempts of one call carry the same one.
    const bodies: string[] = [];
    const flaky = createServer((req, res) => {
      let b = '';
      req.on('data', (d: Buffer) => {
        b += d;
      });
      req.on('end', () => {
        bodies.push(b);
        res.writeHead(bodies.length === 1 ? 500 : 200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(bodies.length === 1 ? '{"__type":"InternalServiceError"}' : '{"VersionId":"v-2"}');
      });
    });
    await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`;
      const f = new SecretsManager({ region: 'us-east-1', credentials, endpoint: url });
      expect(await f.putSecretValue('smtp', 'x')).toEqual({ VersionId: 'v-2' });
      const [a, b] = bodies.map((x) => JSON.parse(x) as { ClientRequestToken: string });
      expect(a!.ClientRequestToken).toMatch(/^[0-9a-f-]{36}$/);
      expect(b!.ClientRequestToken).toBe(a!.ClientRequestToken);
    } finally {
      await new Promise<void>((r) => flaky.close(() => r()));
    }
  });

  it('names a permanent error by its AWS type and does not retry it', async () => {
    sm.resetCalls();
    const err = (await client()
      .getSecretValue('missing')
      .catch((e: unknown) => e)) as AwsError;
    expect(err).toBeInstanceOf(AwsError);
    expect(err.name).toBe('ResourceNotFoundException');
    expect(err.status).toBe(400);
    expect(err.transient).toBe(false);
    expect(sm.calls('GetSecretValue')).toBe(1);
  });

  it('retries a throttled or failed call once, then gives up with a transient error', async () => {
    sm.resetCalls();
    sm.failNext({ type: 'ThrottlingException', status: 400 });
    expect((await client().getSecretValue('smtp')).SecretString).toContain('mail.example.com');
    expect(sm.calls('GetSecretValue')).toBe(2);
    sm.resetCalls();
    sm.failNext({ type: 'InternalServiceError', status: 500, times: 2 });
    const err = (await client()
      .getSecretValue('smtp')
      .catch((e: unknown) => e)) as AwsError;
    expect([err.name, err.status, err.transient]).toEqual(['InternalServiceError', 500, true]);
    expect(sm.calls('GetSecretValue')).toBe(2);
  });

  it('times out a request that gets no answer (transient), on every attempt', async () => {
    const silent = createServer(() => {}); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const c = new SecretsManager({
        region: 'us-east-1',
        credentials,
        endpoint: url,
        requestTimeoutMs: 200,
      });
      const err = (await c.getSecretValue('smtp').catch((e: unknown) => e)) as AwsError;
      expect([err.name, err.transient]).toEqual(['TimeoutError', true]);
      expect(err.message).toBe('no answer within 200 ms');
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('a connection refused is a transient network error', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const c = new SecretsManager({ region: 'us-east-1', credentials, endpoint: `http://127.0.0.1:${port}` });
    const err = (await c.getSecretValue('smtp').catch((e: unknown) => e)) as AwsError;
    expect([err.name, err.transient]).toEqual(['NetworkError', true]);
  });
});

describe('region and credentials from the Lambda environment', () => {
  const lambdaEnv = LAMBDA_ENV;

  it('uses the regional endpoint unless AWS_ENDPOINT_URL_SECRETS_MANAGER or AWS_ENDPOINT_URL says otherwise', () => {
    expect(secretsManagerFromEnv(lambdaEnv).endpoint.href).toBe(
      'https://secretsmanager.eu-central-1.amazonaws.com/',
    );
    expect(secretsManagerFromEnv({ ...lambdaEnv, AWS_REGION: 'cn-north-1' }).endpoint.href).toBe(
      'https://secretsmanager.cn-north-1.amazonaws.com.cn/',
    );
    expect(
      secretsManagerFromEnv({ ...lambdaEnv, AWS_ENDPOINT_URL: 'http://127.0.0.1:1/' }).endpoint.port,
    ).toBe('1');
    expect(
      secretsManagerFromEnv({
        ...lambdaEnv,
        AWS_ENDPOINT_URL: 'http://127.0.0.1:1/',
        AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
      }).endpoint.href,
    ).toBe(`${sm.url}/`);
  });

  it('signs with the session token Lambda provides, and reads through it', async () => {
    const out = await secretsManagerFromEnv({
      ...lambdaEnv,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
    }).getSecretValue('smtp');
    expect(out.SecretString).toContain('mail.example.com');
  });

  it('refuses to start without a region or credentials (a permanent ConfigurationError naming them)', () => {
    const { AWS_REGION: _r, AWS_SECRET_ACCESS_KEY: _s, ...partial } = lambdaEnv;
    expect(() => secretsManagerFromEnv(partial)).toThrow(
      expect.objectContaining({
        name: 'ConfigurationError',
        transient: false,
        message: 'AWS_REGION, AWS_SECRET_ACCESS_KEY not set (Lambda sets them)',
      }),
    );
  });
});
