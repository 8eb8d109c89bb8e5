/**
 * OAuth2 and DKIM through the BUNDLED handler (scripts/build.ts), with the secret in the local Secrets Manager
 * (real SDK client): the token endpoint in Entra ID's shapes, smtp-server checking the XOAUTH2 token, the arrived
 * message's DKIM signatures checked by mailauth and python3-dkim; then a refresh_token grant whose rotated token
 * is written back with PutSecretValue; then a provider refusal with its hint in the /send problem detail.
 */
import { generateKeyPairSync } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dkimDnsRecord, dkimSigner } from '../../functions/mime/dkim.ts';
import { createLambdaContext } from '../../local/lambda-context.ts';
import {
  type SecretsManagerEndpoint,
  startSecretsManagerEndpoint,
} from '../../local/secrets-manager-endpoint.ts';
import { buildHandler, ROOT } from '../../scripts/build.ts';
import { verifyWithMailauth, verifyWithPythonDkim } from '../support/dkim-verifiers.ts';
import { startTokenEndpoint, type TokenEndpoint, xoauth2OnAuth } from '../support/oauth-token-endpoint.ts';
import { type ScriptedServer, startScriptedServer } from '../support/scripted-server.ts';
import { startSmtpServer, TEST_CA, type TestSmtpServer } from '../support/smtp-server.ts';
import { sendEvent } from './events.ts';

// biome-ignore lint/suspicious/noExplicitAny: the bundle is untyped JavaScript
type Bundled = { handler: ((e: unknown, c: unknown) => Promise<any>) & { close(): Promise<void> } };

const MAILBOX = 'mailer@contoso.com';
const outdir = `dist/test-bundle-oauth-${process.pid}`;
const pem = (k: { export(o: { format: 'pem'; type: 'pkcs8' }): string | Buffer }) =>
  String(k.export({ format: 'pem', type: 'pkcs8' }));
const rsaKey = pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
const edKey = pem(generateKeyPairSync('ed25519').privateKey);
const dkim = [
  { domain: 'contoso.com', selector: 'rsa1', privateKey: rsaKey },
  { domain: 'contoso.com', selector: 'ed1', privateKey: edKey },
];
const records = Object.fromEntries(
  dkim.map((k) => [`${k.selector}._domainkey.${k.domain}`, dkimDnsRecord(dkimSigner(k))]),
);

let idp: TokenEndpoint;
let smtp: TestSmtpServer;
let outlook: ScriptedServer;
let sm: SecretsManagerEndpoint;
let bundle: Bundled;
const seen: Array<{ user: string; token: string }> = [];

const secretFor = (auth: object, port = smtp.port) =>
  JSON.stringify({ host: '127.0.0.1', port, ca: TEST_CA, username: MAILBOX, from: MAILBOX, auth, dkim });
const entra = () => ({
  type: 'oauth2',
  grant: 'client_credentials',
  tokenUrl: idp.entraUrl('contoso'),
  clientId: 'app-b',
  clientSecret: 'bundle-secret',
});

beforeAll(async () => {
  idp = await startTokenEndpoint({
    clients: { 'app-b': 'bundle-secret' },
    appMailboxes: [MAILBOX],
    refreshTokens: {},
  });
  smtp = await startSmtpServer({ authMethods: ['XOAUTH2'], extra: { onAuth: xoauth2OnAuth(idp, seen) } });
  outlook = await startScriptedServer({
    extensions: ['ENHANCEDSTATUSCODES', 'AUTH XOAUTH2'],
    onCommand: (cmd) =>
      cmd.startsWith('AUTH')
        ? {
            reply:
              '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.\r\n',
          }
        : undefined,
  });
  sm = await startSecretsManagerEndpoint();
  sm.setSecret('smtp-oauth', secretFor(entra()));
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
    AWS_SECRET_ACCESS_KEY: 'local-test-secret',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
    SMTP_SECRET_ID: 'smtp-oauth',
    // Read the secret on every invocation, so the tests below can change it between invocations.
    SECRET_TTL_SECONDS: '0',
    SMTP_REUSE: 'false',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    ENDPOINT_CONFIG: JSON.stringify({
      send: { allowedRecipients: ['*@example.com'], allowedSenders: [MAILBOX] },
    }),
  });
  const built = await buildHandler({ outdir });
  bundle = (await import(pathToFileURL(built.outfile).href)) as Bundled;
}, 120_000);

afterAll(async () => {
  await bundle?.handler.close();
  await Promise.all([idp?.close(), smtp?.close(), outlook?.close(), sm?.close()]);
  rmSync(join(ROOT, outdir), { recursive: true, force: true });
});

const send = (subject: string) =>
  bundle.handler(
    sendEvent({ to: 'team@example.com', subject, text: 'via XOAUTH2, signed' }),
    createLambdaContext(),
  );

describe('the bundled handler with an OAuth2 + DKIM secret', () => {
  it('client_credentials: one token for two sends; the message arrives with two DKIM signatures that verify', async () => {
    const first = await send('bundle oauth 1');
    const second = await send('bundle oauth 2');
    expect(first.statusCode, first.body).toBe(200);
    expect(second.statusCode, second.body).toBe(200);
    expect(idp.calls.map((c) => [c.grantType, c.status])).toEqual([['client_credentials', 200]]);
    expect(seen.map((s) => s.user)).toEqual([MAILBOX, MAILBOX]);
    const raw = smtp.messages.at(-1)!.raw;
    const [a, b] = await Promise.all([verifyWithMailauth(raw, records), verifyWithPythonDkim(raw, records)]);
    expect(a.results.map((r) => [r.selector, r.status])).toEqual([
      ['rsa1', 'pass'],
      ['ed1', 'pass'],
    ]);
    expect(b.results.map((r) => [r.selector, r.status])).toEqual([
      ['rsa1', 'pass'],
      ['ed1', 'pass'],
    ]);
  });

  it('the token is refused (535 after the 334 challenge): one new token, then delivered', async () => {
    idp.revokeAll();
    const calls = idp.calls.length;
    const res = await send('bundle oauth after revoke');
    expect(res.statusCode, res.body).toBe(200);
    expect(idp.calls.length - calls).toBe(1);
  });

  it('refresh_token with writeBack: the rotated refresh token is stored with PutSecretValue', async () => {
    idp.options.refreshTokens!['rt-bundle'] = { clientId: 'app-r', subject: MAILBOX, rotate: true };
    sm.setSecret(
      'smtp-oauth',
      secretFor({
        type: 'oauth2',
        grant: 'refresh_token',
        tokenUrl: idp.entraUrl('common'),
        clientId: 'app-r',
        refreshToken: 'rt-bundle',
        writeBack: true,
      }),
    );
    sm.resetCalls();
    const res = await send('bundle refresh token');
    expect(res.statusCode, res.body).toBe(200);
    expect(sm.calls('PutSecretValue', 'smtp-oauth')).toBe(1);
    expect(JSON.parse(sm.getSecret('smtp-oauth')!).auth.refreshToken).toMatch(/^rt\./);
  });

  it('a provider refusal: the /send problem detail carries the hint (IAM callers)', async () => {
    sm.setSecret('smtp-oauth', secretFor(entra(), outlook.port));
    const res = await send('refused');
    expect(res.statusCode).toBe(500);
    const p = JSON.parse(res.body);
    expect(p).toMatchObject({
      code: 'configuration_error',
      hint: 'microsoft_smtp_auth_disabled',
      smtp: { code: 535, enhancedCode: '5.7.139' },
    });
    expect(p.detail).toMatch(/Set-CASMailbox/);
  });
});
