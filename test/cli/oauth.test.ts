/**
 * The CLI with the deployed configuration: `verify --secret-file` (the exact JSON the function reads, OAuth grant
 * and all) and `--auth xoauth2 --oauth-*` (a client_credentials token fetched by the CLI), against the local token
 * endpoint and smtp-server checking the XOAUTH2 token; provider hints on the error output. Real `smtp-send` process.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dkimDnsRecord, dkimSigner } from '../../functions/mime/dkim.ts';
import { verifyWithMailauth } from '../support/dkim-verifiers.ts';
import { startTokenEndpoint, type TokenEndpoint, xoauth2OnAuth } from '../support/oauth-token-endpoint.ts';
import { type ScriptedServer, startScriptedServer } from '../support/scripted-server.ts';
import { startSmtpServer, TEST_CA, type TestSmtpServer } from '../support/smtp-server.ts';
import { CA_FILE, runCli, runInProcess } from './run-cli.ts';

const MAILBOX = 'mailer@contoso.com';
const SECRET = 'cli-client-secret-value';
let idp: TokenEndpoint;
let smtp: TestSmtpServer;
let dir: string;
const seen: Array<{ user: string; token: string }> = [];

beforeAll(async () => {
  idp = await startTokenEndpoint({
    clients: { 'app-cli': SECRET },
    appMailboxes: [MAILBOX],
    refreshTokens: { 'rt-cli': { clientId: 'app-cli', subject: MAILBOX, rotate: true } },
  });
  smtp = await startSmtpServer({ authMethods: ['XOAUTH2'], extra: { onAuth: xoauth2OnAuth(idp, seen) } });
  dir = mkdtempSync(join(tmpdir(), 'smtp-send-cli-'));
});
afterAll(async () => {
  await Promise.all([idp.close(), smtp.close()]);
  rmSync(dir, { recursive: true, force: true });
});

function secretFile(name: string, secret: object): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(secret));
  return file;
}

const m365 = (clientSecret = SECRET) => ({
  host: '127.0.0.1',
  port: smtp.port,
  username: MAILBOX,
  from: MAILBOX,
  ca: TEST_CA,
  auth: {
    type: 'oauth2',
    grant: 'client_credentials',
    tokenUrl: idp.entraUrl('contoso'),
    clientId: 'app-cli',
    clientSecret,
  },
});

describe('smtp-send verify --secret-file', () => {
  it('fetches the token the way the function does and authenticates with XOAUTH2', async () => {
    const before = idp.calls.length;
    const r = await runCli(['verify', '--secret-file', secretFile('m365.json', m365())]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Result: +OK, authenticated as mailer@contoso\.com \(XOAUTH2\)$/m);
    expect(idp.calls.length - before).toBe(1);
    expect(seen.at(-1)!.user).toBe(MAILBOX);
    expect(r.stdout).not.toContain(seen.at(-1)!.token);
  });

  it('--transcript and --json never show the access token', async () => {
    const file = join(dir, 'm365.json');
    const t = await runCli(['verify', '--secret-file', file, '--transcript']);
    expect(t.code).toBe(0);
    const token = seen.at(-1)!.token;
    expect(t.stdout).toMatch(/C: AUTH XOAUTH2 \*\*\*/);
    expect(t.stdout).not.toContain(token);
    const payload = Buffer.from(`user=${MAILBOX}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
    expect(t.stdout).not.toContain(payload);
    expect(t.stdout).not.toContain(payload.slice(0, 24));
    const j = await runCli(['verify', '--secret-file', file, '--json', '--transcript']);
    expect(j.code).toBe(0);
    expect(j.stdout).not.toContain(seen.at(-1)!.token);
  });

  it('a refused client secret: exit 3, the AADSTS code and the hint, never the secret', async () => {
    const r = await runCli(['verify', '--secret-file', secretFile('bad.json', m365('not-the-secret'))]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/invalid_client AADSTS7000215/);
    expect(r.stderr).toMatch(/^hint \(entra_invalid_client_secret\): /m);
    expect(r.stderr).not.toContain('not-the-secret');
    const j = await runInProcess(['verify', '--json', '--secret-file', join(dir, 'bad.json')]);
    expect(JSON.parse(j.stdout).error).toMatchObject({
      code: 'configuration_error',
      hint: { code: 'entra_invalid_client_secret' },
    });
  });

  it('a malformed secret file names the field (exit 3), never a value; flags it already says are refused', async () => {
    const r = await runInProcess([
      'verify',
      '--secret-file',
      secretFile('typo.json', { ...m365(), port: 'x', password: SECRET }),
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/port/);
    expect(r.stderr).not.toContain(SECRET);
    const u = await runInProcess(['verify', '--secret-file', 'x.json', '--host', 'h']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/--secret-file and --host cannot be combined/);
  });

  it('refresh_token with writeBack: a rotated refresh token is reported, the file is left as it is', async () => {
    const secret = {
      ...m365(),
      auth: {
        type: 'oauth2',
        grant: 'refresh_token',
        tokenUrl: idp.entraUrl('common'),
        clientId: 'app-cli',
        refreshToken: 'rt-cli',
        writeBack: true,
      },
    };
    const file = secretFile('rt.json', secret);
    const r = await runCli(['verify', '--secret-file', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /^smtp-send: note: the provider rotated the refresh token; .*rt\.json was not changed/m,
    );
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(secret);
  });

  it("send --secret-file signs with the secret's DKIM key (the arrived message verifies)", async () => {
    const key = String(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const file = secretFile('dkim.json', {
      ...m365(),
      dkim: { domain: 'contoso.com', selector: 'cli', privateKey: key },
    });
    const r = await runCli([
      'send',
      '--secret-file',
      file,
      '--from',
      MAILBOX,
      '--to',
      'team@example.com',
      '--subject',
      'signed',
      '--text',
      'hi',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const raw = smtp.messages.at(-1)!.raw;
    const record = dkimDnsRecord(dkimSigner({ domain: 'contoso.com', selector: 'cli', privateKey: key }));
    const v = await verifyWithMailauth(raw, { 'cli._domainkey.contoso.com': record });
    expect(v.results.map((x) => x.status)).toEqual(['pass']);
  });
});

describe('smtp-send --auth xoauth2 --oauth-*', () => {
  const args = (extra: string[] = []) => [
    'verify',
    '--url',
    `smtp://${encodeURIComponent(MAILBOX)}@localhost:${smtp.port}`,
    '--ca',
    CA_FILE,
    '--auth',
    'xoauth2',
    '--oauth-token-url',
    idp.entraUrl('contoso'),
    '--oauth-client-id',
    'app-cli',
    '--oauth-client-secret-env',
    'CLIENT_SECRET',
    ...extra,
  ];

  it('fetches a client_credentials token (scope Office 365 by default) and authenticates', async () => {
    const r = await runCli(args(), { env: { CLIENT_SECRET: SECRET } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/authenticated as mailer@contoso\.com \(XOAUTH2\)/);
    expect(idp.calls.at(-1)).toMatchObject({
      status: 200,
      params: { scope: 'https://outlook.office365.com/.default' },
    });
  });

  it.each([
    [
      ['--oauth-client-id', 'a', '--oauth-client-secret-env', 'S', '--oauth-tenant', 't'],
      /only used with --auth xoauth2/,
      false,
    ],
    [
      ['--auth', 'xoauth2', '--oauth-client-id', 'a', '--oauth-tenant', 't'],
      /--oauth-client-secret-env NAME is required/,
      true,
    ],
    [
      ['--auth', 'xoauth2', '--oauth-client-id', 'a', '--oauth-client-secret-env', 'S'],
      /--oauth-token-url URL or --oauth-tenant/,
      true,
    ],
    [['--auth', 'xoauth2', '--token-env', 'T', '--oauth-client-id', 'a'], /cannot be combined/, true],
    [
      [
        '--auth',
        'xoauth2',
        '--oauth-client-id',
        'a',
        '--oauth-client-secret-env',
        'S',
        '--oauth-token-url',
        'http://login.example.com/t',
      ],
      /--oauth-token-url must be an https:\/\/ URL/,
      true,
    ],
  ])('usage: %j', async (flags, message) => {
    const r = await runInProcess(['verify', '--host', '127.0.0.1', '--user', 'u', ...flags], { S: 'x' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});

describe('provider hints in the CLI output', () => {
  let ms: ScriptedServer;
  beforeAll(async () => {
    ms = await startScriptedServer({
      extensions: ['ENHANCEDSTATUSCODES', 'AUTH LOGIN'],
      onCommand: (cmd) =>
        cmd.startsWith('AUTH')
          ? { reply: '550 5.7.30 Basic authentication is not supported for Client Submission.\r\n' }
          : undefined,
    });
  });
  afterAll(() => ms.close());

  it('Exchange Online refusing a password: the error line, then the hint (text and --json)', async () => {
    const argv = [
      'verify',
      '--url',
      `smtp://${encodeURIComponent(MAILBOX)}@localhost:${ms.port}`,
      '--ca',
      CA_FILE,
      '--password-env',
      'P',
    ];
    const r = await runCli(argv, { env: { P: 'pw' } });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^smtp-send: error in auth: 550 5\.7\.30 Basic authentication is not supported/);
    expect(r.stderr).toMatch(/^hint \(microsoft_basic_auth_disabled\): .*auth\.type/m);
    const j = await runInProcess([...argv, '--json'], { P: 'pw' });
    expect(JSON.parse(j.stdout).error.hint.code).toBe('microsoft_basic_auth_disabled');
  });
});
