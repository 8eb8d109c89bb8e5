/**
 * functions/config/secrets.ts (the cache in front of our Secrets Manager client) against
 * local/secrets-manager-endpoint.ts, reached only through the standard AWS_ENDPOINT_URL_SECRETS_MANAGER variable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretError, SecretStore, secretTtlFromEnv } from '../../functions/config/secrets.ts';
import { parseSmtpSecret, SecretSmtpSettings } from '../../functions/config/smtp-secret.ts';
import { SendError } from '../../functions/send/errors.ts';
import {
  type SecretsManagerEndpoint,
  startSecretsManagerEndpoint,
} from '../../local/secrets-manager-endpoint.ts';
import { thrown } from '../support/fixtures.ts';

const PASSWORD = 'pa55-Wörd-very-secret';
const good = {
  host: '127.0.0.1',
  port: 2525,
  username: 'mailer',
  password: PASSWORD,
  from: 'noreply@example.com',
};

let sm: SecretsManagerEndpoint;

beforeAll(async () => {
  sm = await startSecretsManagerEndpoint({ secrets: { smtp: good } });
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'AKIDLOCALTEST';
  process.env.AWS_SECRET_ACCESS_KEY = 'local-test-secret';
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.url;
});

afterAll(async () => {
  await sm.close();
});

describe('SecretStore with the real SDK client', () => {
  it('fetches once and serves from cache within the TTL', async () => {
    sm.resetCalls();
    const store = new SecretStore({ ttlMs: 60_000 });
    const a = await store.get('smtp');
    const b = await store.get('smtp');
    expect(JSON.parse(a.value).username).toBe('mailer');
    expect(b).toBe(a);
    expect(a.versionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(sm.calls('GetSecretValue', 'smtp')).toBe(1);
  });

  it('fetches again after the TTL', async () => {
    sm.resetCalls();
    let now = 1_000_000;
    const store = new SecretStore({ ttlMs: 300_000, now: () => now });
    await store.get('smtp');
    now += 299_000;
    await store.get('smtp');
    expect(sm.calls('GetSecretValue')).toBe(1);
    now += 2_000;
    await store.get('smtp');
    expect(sm.calls('GetSecretValue')).toBe(2);
  });

  it('concurrent first calls share one fetch', async () => {
    sm.resetCalls();
    const store = new SecretStore({ ttlMs: 60_000 });
    const all = await Promise.all(Array.from({ length: 20 }, () => store.get('smtp')));
    expect(new Set(all).size).toBe(1);
    expect(sm.calls('GetSecretValue')).toBe(1);
    expect(store.fetches).toBe(1);
  });

  it('refresh() picks up a rotated value', async () => {
    const store = new SecretStore({ ttlMs: 60_000 });
    const before = await store.get('smtp');
    sm.rotateSecret('smtp', { ...good, password: 'rotated-password' });
    expect((await store.get('smtp')).value).toBe(before.value); // still cached
    const after = await store.refresh('smtp');
    expect(JSON.parse(after.value).password).toBe('rotated-password');
    expect(after.versionId).not.toBe(before.versionId);
    sm.rotateSecret('smtp', good);
  });

  it('accepts an ARN as the id', async () => {
    const store = new SecretStore();
    const arn = sm.arnOf('smtp')!;
    expect(JSON.parse((await store.get(arn)).value).from).toBe('noreply@example.com');
  });

  it('a missing secret is a permanent SecretError naming the id; the SMTP settings call it a configuration_error', async () => {
    const store = new SecretStore();
    const err = await store.get('does-not-exist').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretError);
    expect((err as SecretError).transient).toBe(false);
    expect((err as SecretError).message).toContain('does-not-exist');
    expect((err as SecretError).message).toContain('ResourceNotFoundException');
    const smtp = await new SecretSmtpSettings(store, 'does-not-exist').get().catch((e: unknown) => e);
    expect(smtp).toBeInstanceOf(SendError);
    expect((smtp as SendError).code).toBe('configuration_error');
    expect((smtp as SendError).message).toContain('does-not-exist');
    expect((smtp as SendError).message).toContain('ResourceNotFoundException');
  });

  it('throttling is transient (the SMTP settings: smtp_unavailable), not a configuration error', async () => {
    // The client makes 2 attempts (maxAttempts: 2); both fail.
    sm.failNext({ type: 'ThrottlingException', status: 400, operation: 'GetSecretValue', times: 2 });
    const store = new SecretStore();
    const err = (await store.get('smtp').catch((e: unknown) => e)) as SecretError;
    expect(err).toBeInstanceOf(SecretError);
    expect(err.transient).toBe(true);
    sm.failNext({ type: 'ThrottlingException', status: 400, operation: 'GetSecretValue', times: 2 });
    const smtp = (await new SecretSmtpSettings(store, 'smtp').get().catch((e: unknown) => e)) as SendError;
    expect(smtp.code).toBe('smtp_unavailable');
    expect(smtp.transient).toBe(true);
    expect((await new SecretStore().get('smtp')).value).toContain('mailer');
  });

  it('after the TTL, a transient Secrets Manager failure serves the last good value (stale-if-error)', async () => {
    let now = 5_000_000;
    const store = new SecretStore({ ttlMs: 1000, now: () => now });
    const first = await store.get('smtp');
    now += 5000;
    sm.failNext({ type: 'InternalServiceError', status: 500, operation: 'GetSecretValue', times: 2 });
    expect(await store.get('smtp')).toBe(first);
    expect(store.staleServed).toBe(1);
    // A permanent error is not hidden.
    const other = new SecretStore({ ttlMs: 1000, now: () => now });
    sm.setSecret('short-lived', 'v1');
    await other.get('short-lived');
    sm.deleteSecret('short-lived');
    now += 5000;
    const gone = (await other.get('short-lived').catch((e: unknown) => e)) as SecretError;
    expect(gone).toBeInstanceOf(SecretError);
    expect(gone.transient).toBe(false);
  });

  it('SECRET_TTL_SECONDS is read from the environment (default 300)', () => {
    expect(secretTtlFromEnv({})).toBe(300_000);
    expect(secretTtlFromEnv({ SECRET_TTL_SECONDS: '30' })).toBe(30_000);
    expect(secretTtlFromEnv({ SECRET_TTL_SECONDS: '0' })).toBe(0);
    expect(secretTtlFromEnv({ SECRET_TTL_SECONDS: 'soon' })).toBe(300_000);
  });
});

describe('SMTP secret validation', () => {
  it('applies port/security defaults', () => {
    expect(parseSmtpSecret(JSON.stringify({ ...good, port: undefined })).connection).toMatchObject({
      port: 587,
      security: 'starttls',
    });
    expect(parseSmtpSecret(JSON.stringify({ ...good, port: 465 })).connection).toMatchObject({
      port: 465,
      security: 'tls',
    });
    expect(
      parseSmtpSecret(JSON.stringify({ ...good, port: undefined, security: 'tls' })).connection,
    ).toMatchObject({
      port: 465,
      security: 'tls',
    });
    // The console's key/value editor stores strings.
    expect(parseSmtpSecret(JSON.stringify({ ...good, port: '2525' })).connection.port).toBe(2525);
  });

  it('names every bad field and never echoes a value', () => {
    const bad = {
      host: 42,
      port: 'seventy',
      security: 'ssl',
      password: PASSWORD,
      from: PASSWORD,
      ca: PASSWORD,
    };
    const err = thrown(() => parseSmtpSecret(JSON.stringify(bad), 'secret smtp'), SendError);
    expect(err.code).toBe('configuration_error');
    for (const field of ['host', 'port', 'security', 'username', 'from', 'ca'])
      expect(err.message).toContain(field);
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).not.toContain('seventy');
    expect(err.message).not.toContain('ssl"');
    expect(JSON.stringify(err.toJSON())).not.toContain(PASSWORD);
  });

  it('invalid JSON says so without echoing the text', () => {
    const err = thrown(() => parseSmtpSecret(`{"password":"${PASSWORD}",`, 'secret smtp'), SendError);
    expect(err.message).toBe('secret smtp: SecretString is not valid JSON');
  });

  it('SecretSmtpSettings reads through the store and reports malformed secrets', async () => {
    sm.setSecret('smtp-bad', { host: 'smtp.example.com', password: PASSWORD });
    const settings = new SecretSmtpSettings(new SecretStore(), 'smtp-bad');
    const err = (await settings.get().catch((e: unknown) => e)) as SendError;
    expect(err.code).toBe('configuration_error');
    expect(err.message).toMatch(/username.*required/);
    expect(err.message).toMatch(/from.*required/);
    expect(err.message).not.toContain(PASSWORD);

    const ok = await new SecretSmtpSettings(new SecretStore(), 'smtp').get();
    expect(ok.connection.auth).toEqual({ username: 'mailer', password: PASSWORD });
    expect(ok.from).toBe('noreply@example.com');
  });
});

describe('the endpoint itself', () => {
  it('speaks JSON 1.1: unknown id → 400 ResourceNotFoundException, unknown op → 400', async () => {
    const post = (target: string, body: unknown) =>
      fetch(sm.url, {
        method: 'POST',
        headers: { 'x-amz-target': target, 'content-type': 'application/x-amz-json-1.1' },
        body: JSON.stringify(body),
      });
    const nf = await post('secretsmanager.GetSecretValue', { SecretId: 'nope' });
    expect(nf.status).toBe(400);
    expect(await nf.json()).toMatchObject({ __type: 'ResourceNotFoundException' });
    const ok = await post('secretsmanager.GetSecretValue', { SecretId: 'smtp' });
    const body = (await ok.json()) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(
      expect.arrayContaining([
        'ARN',
        'Name',
        'SecretString',
        'VersionId',
        'VersionIdsToStages',
        'CreatedDate',
      ]),
    );
    expect(typeof body.CreatedDate).toBe('number');
    const unknown = await post('secretsmanager.RotateSecret', { SecretId: 'smtp' });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ __type: 'UnknownOperationException' });
  });

  it('keeps AWSPREVIOUS after a rotation', async () => {
    sm.setSecret('rot', 'one');
    sm.rotateSecret('rot', 'two');
    const post = (body: unknown) =>
      fetch(sm.url, {
        method: 'POST',
        headers: { 'x-amz-target': 'secretsmanager.GetSecretValue' },
        body: JSON.stringify(body),
      }).then((r) => r.json() as Promise<{ SecretString: string }>);
    expect((await post({ SecretId: 'rot' })).SecretString).toBe('two');
    expect((await post({ SecretId: 'rot', VersionStage: 'AWSPREVIOUS' })).SecretString).toBe('one');
  });
});
