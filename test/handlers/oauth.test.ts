/**
 * OAuth2 in the SMTP secret, end to end with real parts: the secret in the local Secrets Manager (real SDK
 * client), a local token endpoint answering in Entra ID v2.0's and Google's exact JSON shapes (counting calls,
 * verifying the JWT with the public key), and smtp-server as the SMTP peer checking the XOAUTH2 token it gets.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OAuthTokenSource, TOKEN_EXPIRY_MARGIN_MS } from '../../functions/config/oauth-credentials.ts';
import { SecretStore } from '../../functions/config/secrets.ts';
import {
  parseSmtpSecret,
  parseSmtpSecretText,
  SecretSmtpSettings,
} from '../../functions/config/smtp-secret.ts';
import { type DeliverDeps, deliver } from '../../functions/send/deliver.ts';
import { SendError } from '../../functions/send/errors.ts';
import { SmtpTransport } from '../../functions/send/transport.ts';
import type { DeliveryTrace } from '../../functions/send/types.ts';
import {
  type SecretsManagerEndpoint,
  startSecretsManagerEndpoint,
} from '../../local/secrets-manager-endpoint.ts';
import { rejection, thrown } from '../support/fixtures.ts';
import { startTokenEndpoint, type TokenEndpoint, xoauth2OnAuth } from '../support/oauth-token-endpoint.ts';
import { startSmtpServer, TEST_CA, type TestSmtpServer } from '../support/smtp-server.ts';

const MAILBOX = 'mailer@contoso.com';
const CLIENT_SECRET = 'Qx8~client-secret-value-very-secret';
const limits = { maxRecipients: 10, maxBatch: 10, maxBodyBytes: 100_000, maxAttachmentBytes: 100_000 };
const message = { to: 'team@example.com', subject: 'OAuth', text: 'sent with an access token' };

const google = generateKeyPairSync('rsa', { modulusLength: 2048 });
const googlePrivate = String(google.privateKey.export({ format: 'pem', type: 'pkcs8' }));
const googlePublic = String(google.publicKey.export({ format: 'pem', type: 'spki' }));

let sm: SecretsManagerEndpoint;
let idp: TokenEndpoint;
let smtp: TestSmtpServer;
const seen: Array<{ user: string; token: string }> = [];

beforeAll(async () => {
  sm = await startSecretsManagerEndpoint();
  idp = await startTokenEndpoint({
    clients: { 'app-1': CLIENT_SECRET, 'app-expired': 'old-secret' },
    expiredClients: ['app-expired'],
    tenants: ['contoso', 'common'],
    appMailboxes: [MAILBOX],
    serviceAccounts: {
      'mailer@proj.iam.gserviceaccount.com': { publicKey: googlePublic },
      'nodelegation@proj.iam.gserviceaccount.com': { publicKey: googlePublic, delegated: false },
    },
    refreshTokens: {},
  });
  smtp = await startSmtpServer({ authMethods: ['XOAUTH2'], extra: { onAuth: xoauth2OnAuth(idp, seen) } });
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'AKIDLOCALTEST';
  process.env.AWS_SECRET_ACCESS_KEY = 'local-test-secret';
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.url;
});
afterAll(async () => {
  await Promise.all([sm.close(), idp.close(), smtp.close()]);
});
afterEach(() => {
  idp.calls.length = 0;
  seen.length = 0;
  idp.release();
});

const base = () => ({ host: '127.0.0.1', port: smtp.port, ca: TEST_CA, username: MAILBOX, from: MAILBOX });
const entraAuth = (extra: object = {}) => ({
  type: 'oauth2',
  grant: 'client_credentials',
  tenantId: 'contoso',
  tokenUrl: idp.entraUrl('contoso'),
  clientId: 'app-1',
  clientSecret: CLIENT_SECRET,
  ...extra,
});

function setup(secretId: string, secret: object, now?: () => number) {
  sm.setSecret(secretId, JSON.stringify(secret));
  const transport = new SmtpTransport({ reuse: false, idleTimeoutMs: 1000 });
  const settings = new SecretSmtpSettings(new SecretStore(), secretId, now ? { now } : {});
  const deps: DeliverDeps = {
    smtp: settings,
    transport,
    policy: { limits, allowedRecipients: ['*@example.com'] },
  };
  return { deps, settings, transport };
}

const failure = (p: Promise<unknown>) => rejection(p, SendError);

describe('client_credentials (Microsoft Entra ID v2.0)', () => {
  it('fetches one token, authenticates with XOAUTH2 as the mailbox, and reuses the token', async () => {
    const { deps, transport } = setup('m365', { ...base(), auth: entraAuth() });
    const trace: DeliveryTrace = { attempts: 0, roundTrips: 0 };
    await deliver(message, deps, { deadline: Date.now() + 20_000, trace });
    await deliver(message, deps, { deadline: Date.now() + 20_000 });
    await transport.close();
    expect(idp.calls).toHaveLength(1);
    expect(idp.calls[0]).toMatchObject({
      path: '/contoso/oauth2/v2.0/token',
      grantType: 'client_credentials',
      status: 200,
      params: { client_id: 'app-1', scope: 'https://outlook.office365.com/.default' },
    });
    expect(seen.map((s) => s.user)).toEqual([MAILBOX, MAILBOX]);
    expect(seen[0]!.token).toBe(seen[1]!.token);
    expect(smtp.messages.at(-1)!.user).toBe(MAILBOX);
    expect(trace.secretRefreshed).toBeUndefined();
  });

  it('concurrent first calls make one token request', async () => {
    const { settings } = setup('m365-concurrent', { ...base(), auth: entraAuth() });
    idp.hold();
    const all = Promise.all(Array.from({ length: 8 }, () => settings.get()));
    await new Promise((r) => setTimeout(r, 300));
    idp.release();
    const got = await all;
    expect(idp.calls).toHaveLength(1);
    expect(new Set(got.map((s) => (s.connection.auth as { accessToken: string }).accessToken)).size).toBe(1);
  });

  it('a token is used until 5 minutes before it expires, then fetched again', async () => {
    let now = Date.now();
    const { settings } = setup('m365-expiry', { ...base(), auth: entraAuth() }, () => now);
    const first = await settings.get();
    now += 3599_000 - TOKEN_EXPIRY_MARGIN_MS - 1000;
    expect((await settings.get()).revision).toBe(first.revision);
    expect(idp.calls).toHaveLength(1);
    now += 2000;
    const second = await settings.get();
    expect(idp.calls).toHaveLength(2);
    expect(second.revision).not.toBe(first.revision);
  });

  it('535 after the 334 error challenge → one new token → delivered', async () => {
    const { deps, transport } = setup('m365-revoked', { ...base(), auth: entraAuth() });
    await deps.smtp.get();
    idp.revokeAll(); // the cached token is no longer accepted
    const trace: DeliveryTrace = { attempts: 0, roundTrips: 0 };
    const out = await deliver(message, deps, { deadline: Date.now() + 20_000, trace });
    await transport.close();
    expect(out).toMatchObject({ status: 'sent', accepted: ['team@example.com'] });
    expect(idp.calls).toHaveLength(2);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.token).not.toBe(seen[1]!.token);
    expect(trace.secretRefreshed).toBe(true);
  });

  it('a second 535 is a clear auth error with a hint, after exactly one refresh', async () => {
    const { deps, transport } = setup('m365-no-mailbox', {
      ...base(),
      username: 'other@contoso.com',
      auth: entraAuth(),
    });
    const before = smtp.messages.length;
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 20_000 }));
    await transport.close();
    expect(err.code).toBe('configuration_error');
    expect(err.smtp).toMatchObject({ phase: 'auth', code: 535 });
    expect(err.message).toMatch(/SMTP authentication failed/);
    expect(err.hint?.code).toBe('google_bad_credentials'); // the test server refuses in Gmail's words
    expect(idp.calls).toHaveLength(2);
    expect(seen).toHaveLength(2);
    expect(smtp.messages.length).toBe(before);
  });

  it('a wrong client secret: invalid_client with AADSTS7000215 → configuration_error with its hint, no secret', async () => {
    const { deps } = setup('m365-bad-secret', {
      ...base(),
      auth: entraAuth({ clientSecret: 'wrong-secret-value' }),
    });
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 20_000 }));
    expect(idp.calls[0]!.status).toBe(401);
    expect(err.code).toBe('configuration_error');
    expect(err.message).toContain('invalid_client AADSTS7000215');
    expect(err.hint?.code).toBe('entra_invalid_client_secret');
    expect(JSON.stringify(err.toJSON())).not.toMatch(/wrong-secret-value|Trace ID/);
    expect(seen).toHaveLength(0);
  });

  it.each([
    [
      'an unknown app',
      { clientId: 'no-such-app' },
      400,
      'unauthorized_client AADSTS700016',
      'entra_app_not_found',
    ],
    [
      'an expired secret',
      { clientId: 'app-expired', clientSecret: 'old-secret' },
      401,
      'invalid_client AADSTS7000222',
      'entra_client_secret_expired',
    ],
    [
      'an unknown tenant',
      { tokenUrl: 'TENANT:fabrikam' },
      400,
      'invalid_request AADSTS90002',
      'entra_tenant_not_found',
    ],
    [
      'a scope without /.default',
      { scope: 'https://outlook.office365.com/SMTP.Send' },
      400,
      'invalid_scope AADSTS1002012',
      'entra_invalid_scope',
    ],
  ])('%s: the AADSTS code and its hint', async (_name, change, status, text, hint) => {
    const extra: Record<string, string> = { ...change };
    if (extra.tokenUrl?.startsWith('TENANT:')) extra.tokenUrl = idp.entraUrl(extra.tokenUrl.slice(7));
    const { deps } = setup(`m365-${hint}`, { ...base(), auth: entraAuth(extra) });
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 20_000 }));
    expect(idp.calls.at(-1)!.status).toBe(status);
    expect(err.code).toBe('configuration_error');
    expect(err.message).toContain(text);
    expect(err.hint?.code).toBe(hint);
  });

  it('a refresh token the endpoint does not know: invalid_grant → its hint', async () => {
    const { deps } = setup('rt-unknown', {
      ...base(),
      auth: {
        type: 'oauth2',
        grant: 'refresh_token',
        tokenUrl: idp.entraUrl('common'),
        clientId: 'app-1',
        refreshToken: 'revoked',
      },
    });
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 20_000 }));
    expect(err.message).toContain('invalid_grant AADSTS70000');
    expect(err.hint?.code).toBe('oauth_invalid_grant');
  });

  it('a token endpoint that is down is transient (smtp_unavailable), not a configuration error', async () => {
    const { deps } = setup('m365-down', { ...base(), auth: entraAuth({ tokenUrl: 'http://127.0.0.1:9/t' }) });
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 20_000 }));
    expect(err.code).toBe('smtp_unavailable');
    expect(err.transient).toBe(true);
  });
});

describe('jwt_bearer (Google service account, domain-wide delegation)', () => {
  const auth = (clientEmail: string) => ({
    type: 'oauth2',
    grant: 'jwt_bearer',
    tokenUrl: idp.googleUrl,
    clientEmail,
    privateKey: googlePrivate,
  });

  it('an RS256 JWT the endpoint verifies with the public key; sub is the mailbox', async () => {
    const { deps, transport } = setup('google', {
      ...base(),
      auth: auth('mailer@proj.iam.gserviceaccount.com'),
    });
    await deliver(message, deps, { deadline: Date.now() + 20_000 });
    await transport.close();
    expect(idp.calls).toHaveLength(1);
    expect(idp.calls[0]).toMatchObject({
      status: 200,
      grantType: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
    });
    expect(idp.calls[0]!.claims).toMatchObject({
      iss: 'mailer@proj.iam.gserviceaccount.com',
      sub: MAILBOX,
      scope: 'https://mail.google.com/',
      aud: idp.googleUrl,
    });
    expect(seen[0]!.token).toMatch(/^ya29\./);
  });

  it('no delegation: unauthorized_client → configuration_error with the delegation hint', async () => {
    const { deps } = setup('google-nodeleg', {
      ...base(),
      auth: auth('nodelegation@proj.iam.gserviceaccount.com'),
    });
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 20_000 }));
    expect(idp.calls[0]!.status).toBe(401);
    expect(err.code).toBe('configuration_error');
    expect(err.message).toContain('unauthorized_client');
    expect(err.hint?.code).toBe('google_delegation_missing');
  });

  it('a JWT signed with another key: invalid_grant "Invalid JWT Signature."', async () => {
    const other = String(
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }),
    );
    const { deps } = setup('google-badsig', {
      ...base(),
      auth: { ...auth('mailer@proj.iam.gserviceaccount.com'), privateKey: other },
    });
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 20_000 }));
    expect(idp.calls[0]!.status).toBe(400);
    expect(err.hint?.code).toBe('oauth_invalid_grant');
  });
});

describe('refresh_token (any provider) with write-back of a rotated refresh token', () => {
  const refreshAuth = (refreshToken: string, extra: object = {}) => ({
    type: 'oauth2',
    grant: 'refresh_token',
    tokenUrl: idp.entraUrl('common'),
    clientId: 'app-2',
    refreshToken,
    ...extra,
  });

  it('rotated by the provider: PutSecretValue stores it (real SDK client → Secrets Manager endpoint)', async () => {
    idp.options.refreshTokens!['rt-first'] = { clientId: 'app-2', subject: MAILBOX, rotate: true };
    const secret = { ...base(), auth: refreshAuth('rt-first', { writeBack: true }), note: 'kept as it is' };
    const { deps, transport } = setup('rt-rotate', secret);
    sm.resetCalls();
    await deliver(message, deps, { deadline: Date.now() + 20_000 });
    await transport.close();
    expect(sm.calls('PutSecretValue', 'rt-rotate')).toBe(1);
    const stored = JSON.parse(sm.getSecret('rt-rotate')!);
    expect(stored.auth.refreshToken).toMatch(/^rt\./);
    expect(stored).toMatchObject({ note: 'kept as it is', auth: { writeBack: true, clientId: 'app-2' } });
    // The next token request (forced) uses the rotated token and succeeds.
    const tokens = new OAuthTokenSource(
      { ...refreshAuth(stored.auth.refreshToken), grant: 'refresh_token', writeBack: false },
      MAILBOX,
    );
    await tokens.get();
    expect(idp.calls.map((c) => c.status)).toEqual([200, 200]);
  });

  it('without writeBack nothing is written (and the rotated token is still used in memory)', async () => {
    idp.options.refreshTokens!['rt-mem'] = { clientId: 'app-2', subject: MAILBOX, rotate: true };
    const { settings } = setup('rt-nowrite', { ...base(), auth: refreshAuth('rt-mem') });
    sm.resetCalls();
    await settings.get();
    await settings.refresh();
    expect(sm.calls('PutSecretValue')).toBe(0);
    expect(idp.calls.map((c) => [c.params.refresh_token === 'rt-mem', c.status])).toEqual([
      [true, 200],
      [false, 200],
    ]);
  });
});

describe('the OAuth part of the secret is validated; errors name the field, never a value', () => {
  const parse =
    (auth: object, extra: object = {}) =>
    () =>
      parseSmtpSecret(JSON.stringify({ ...base(), ...extra, auth }), 'secret smtp');

  it.each([
    [
      'http to a non-loopback host',
      () => entraAuth({ tokenUrl: 'http://login.example.com/token' }),
      /auth\.tokenUrl: must be an https:\/\/ URL/,
    ],
    [
      'neither tenantId nor tokenUrl',
      () => entraAuth({ tenantId: undefined, tokenUrl: undefined }),
      /auth\.tenantId: required/,
    ],
    ['unknown grant', () => ({ type: 'oauth2', grant: 'password', clientId: 'x' }), /auth\.grant/],
    [
      'a key that is not PEM',
      () => ({ type: 'oauth2', grant: 'jwt_bearer', clientEmail: 'a@b', privateKey: CLIENT_SECRET }),
      /auth\.privateKey/,
    ],
    [
      'an unknown key (typo)',
      () => entraAuth({ clientSecrte: CLIENT_SECRET }),
      /auth\.clientSecrte: unknown key/,
    ],
  ])('%s', (_name, auth, message) => {
    const err = thrown(parse(auth()), SendError);
    expect(err.code).toBe('configuration_error');
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain(CLIENT_SECRET);
  });

  it('a password next to auth is refused; without either too', () => {
    expect(parse(entraAuth(), { password: 'x' })).toThrow(/password: not used with auth.type "oauth2"/);
    expect(() => parseSmtpSecret(JSON.stringify(base()))).toThrow(/password: required/);
  });

  it('the Entra token URL and scope follow from tenantId; Google defaults to its token URL and scope', () => {
    const { tokenUrl: _t, ...noUrl } = entraAuth();
    const m = parseSmtpSecretText(JSON.stringify({ ...base(), auth: noUrl }));
    expect(m.oauth).toMatchObject({
      tokenUrl: 'https://login.microsoftonline.com/contoso/oauth2/v2.0/token',
      scope: 'https://outlook.office365.com/.default',
    });
    expect(m.settings.connection.auth).toBeUndefined();
    const g = parseSmtpSecretText(
      JSON.stringify({
        ...base(),
        auth: { type: 'oauth2', grant: 'jwt_bearer', clientEmail: 'a@b', privateKey: googlePrivate },
      }),
    );
    expect(g.oauth).toMatchObject({
      tokenUrl: 'https://oauth2.googleapis.com/token',
      scope: 'https://mail.google.com/',
    });
  });
});
