/**
 * The refresh-token write-back against a second, independent Secrets Manager implementation: moto_server, with the
 * real SDK client. The rotated token becomes AWSCURRENT (the old value AWSPREVIOUS); a write that fails fails the
 * call, and the next call writes it again (a rotated token is never silently lost).
 */
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretStore } from '../../functions/config/secrets.ts';
import { SecretSmtpSettings } from '../../functions/config/smtp-secret.ts';
import type { SendError } from '../../functions/send/errors.ts';
import { type MotoServer, startMotoServer } from '../support/moto-server.ts';
import { startTokenEndpoint, type TokenEndpoint } from '../support/oauth-token-endpoint.ts';

const MAILBOX = 'mailer@contoso.com';
let moto: MotoServer;
let idp: TokenEndpoint;
let sm: SecretsManagerClient;

beforeAll(async () => {
  [moto, idp] = await Promise.all([startMotoServer(), startTokenEndpoint({ refreshTokens: {} })]);
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: moto.url,
  });
  sm = new SecretsManagerClient({ endpoint: moto.url });
}, 90_000);
afterAll(async () => {
  sm?.destroy();
  await Promise.all([moto?.close(), idp?.close()]);
});

const secret = (refreshToken: string) =>
  JSON.stringify({
    host: 'smtp.office365.com',
    username: MAILBOX,
    from: MAILBOX,
    auth: {
      type: 'oauth2',
      grant: 'refresh_token',
      tokenUrl: idp.entraUrl('common'),
      clientId: 'app-m',
      refreshToken,
      writeBack: true,
    },
  });

const current = async (id: string, stage = 'AWSCURRENT') =>
  JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: id, VersionStage: stage }))).SecretString!);

describe('refresh-token write-back against moto_server', () => {
  it('the rotated refresh token is the new AWSCURRENT version; the old one is AWSPREVIOUS', async () => {
    idp.options.refreshTokens!['rt-moto'] = { clientId: 'app-m', subject: MAILBOX, rotate: true };
    await sm.send(new CreateSecretCommand({ Name: 'smtp-moto', SecretString: secret('rt-moto') }));
    const store = new SecretStore();
    const settings = await new SecretSmtpSettings(store, 'smtp-moto').get();
    expect(settings.connection.auth).toMatchObject({ username: MAILBOX, mechanism: 'XOAUTH2' });
    expect(store.writes).toBe(1);
    const now = await current('smtp-moto');
    expect(now.auth.refreshToken).toMatch(/^rt\./);
    expect(now.auth.refreshToken).toBe(
      Object.keys(idp.options.refreshTokens!).find((k) => k.startsWith('rt.')),
    );
    expect((await current('smtp-moto', 'AWSPREVIOUS')).auth.refreshToken).toBe('rt-moto');
  });

  it('a write that fails fails the call; the next call writes it (fail closed, nothing lost)', async () => {
    idp.options.refreshTokens!['rt-gone'] = { clientId: 'app-m', subject: MAILBOX, rotate: true };
    await sm.send(new CreateSecretCommand({ Name: 'smtp-gone', SecretString: secret('rt-gone') }));
    const store = new SecretStore();
    const source = new SecretSmtpSettings(store, 'smtp-gone');
    await store.get('smtp-gone'); // cached: the next get parses it without reading again
    await sm.send(new DeleteSecretCommand({ SecretId: 'smtp-gone', ForceDeleteWithoutRecovery: true }));
    const err = (await source.get().catch((e: unknown) => e)) as SendError;
    expect(err.code).toBe('configuration_error');
    expect(err.message).toMatch(
      /rotated the refresh token but it could not be written back .*cannot write secret smtp-gone: ResourceNotFoundException/,
    );
    expect(JSON.stringify(err.toJSON())).not.toMatch(/rt\./);
    await sm.send(new CreateSecretCommand({ Name: 'smtp-gone', SecretString: secret('rt-gone') }));
    const calls = idp.calls.length;
    await source.get();
    expect(idp.calls.length).toBe(calls); // no new token request: the pending write was retried
    expect((await current('smtp-gone')).auth.refreshToken).toMatch(/^rt\./);
  });
});
