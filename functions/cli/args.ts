/**
 * Command line of `smtp-send` (node:util parseArgs, strict): which command, the connection settings and, for
 * `send`, the message. Pure, no I/O: secrets and files are read later (main.ts), so a usage error is reported
 * before any prompt.
 */
import { parseArgs } from 'node:util';
import type { Security } from '../smtp/types.ts';
import { parseSmtpUrl } from './smtp-url.ts';
import { UsageError } from './usage-error.ts';

export type CommandName = 'verify' | 'send';
export type AuthChoice = 'plain' | 'login' | 'xoauth2';

/** `--auth xoauth2` with a token fetched here (client_credentials) instead of `--token-env`. */
export interface OAuthSpec {
  tokenUrl?: string;
  tenant?: string;
  clientId: string;
  /** Environment variable holding the client secret. */
  clientSecretEnv: string;
  scope?: string;
}

export interface ConnectionSpec {
  /**
   * `--secret-file FILE`: the exact JSON the function reads from Secrets Manager; host, port, security, user and
   * credentials (password or OAuth grant) and CA come from it, `host`/`port`/`security` here are unused.
   */
  secretFile?: string;
  oauth?: OAuthSpec;
  host: string;
  port: number;
  security: Security;
  user?: string;
  /** Environment variable holding the password (or the XOAUTH2 token with --auth xoauth2). */
  secretEnv?: string;
  auth?: AuthChoice;
  caFile?: string;
  ehlo?: string;
  /** Overall deadline in ms; also caps every phase timeout. */
  timeoutMs: number;
  allowPlaintext: boolean;
}

export interface MessageSpec {
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  replyTo?: string;
  subject: string;
  text?: string;
  html?: string;
  attach: string[];
}

export interface OutputSpec {
  json: boolean;
  transcript: boolean;
}

export type Command =
  | { kind: 'help'; topic?: CommandName }
  | { kind: 'verify'; connection: ConnectionSpec; output: OutputSpec }
  | { kind: 'send'; connection: ConnectionSpec; message: MessageSpec; output: OutputSpec };

export const DEFAULT_TIMEOUT_SECONDS = 30;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  url: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  security: { type: 'string' },
  user: { type: 'string' },
  'password-env': { type: 'string' },
  'token-env': { type: 'string' },
  'secret-file': { type: 'string' },
  'oauth-token-url': { type: 'string' },
  'oauth-tenant': { type: 'string' },
  'oauth-client-id': { type: 'string' },
  'oauth-client-secret-env': { type: 'string' },
  'oauth-scope': { type: 'string' },
  auth: { type: 'string' },
  ca: { type: 'string' },
  ehlo: { type: 'string' },
  timeout: { type: 'string' },
  'allow-plaintext': { type: 'boolean' },
  transcript: { type: 'boolean' },
  json: { type: 'boolean' },
  // send only
  from: { type: 'string' },
  to: { type: 'string', multiple: true },
  cc: { type: 'string', multiple: true },
  bcc: { type: 'string', multiple: true },
  'reply-to': { type: 'string' },
  subject: { type: 'string' },
  text: { type: 'string' },
  html: { type: 'string' },
  attach: { type: 'string', multiple: true },
} as const;

const SEND_ONLY = ['from', 'to', 'cc', 'bcc', 'reply-to', 'subject', 'text', 'html', 'attach'] as const;

function isCommand(s: string | undefined): s is CommandName {
  return s === 'verify' || s === 'send';
}

export function parseCommandLine(argv: string[]): Command {
  if (argv.some((a) => /^--pass(word)?(=|$)/.test(a))) {
    throw new UsageError(
      'there is no --password option: a password is never taken on the command line; ' +
        'use --password-env NAME or type it at the prompt',
    );
  }
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs messages are single-line and name the option; keep them, drop the node-internal hints.
    const msg = (err as Error).message.split('\n')[0] ?? 'invalid arguments';
    throw new UsageError(msg.replace(/\. To specify a positional argument.*$/, ''));
  }
  const { values: v, positionals } = parsed;
  const [first, second, ...rest] = positionals;

  if (first === undefined || first === 'help') {
    if (rest.length > 0 || (second !== undefined && !isCommand(second))) {
      throw new UsageError(`help: unknown topic ${JSON.stringify(second)} (commands: verify, send)`);
    }
    return isCommand(second) ? { kind: 'help', topic: second } : { kind: 'help' };
  }
  if (!isCommand(first))
    throw new UsageError(`unknown command ${JSON.stringify(first)} (commands: verify, send, help)`);
  if (v.help) return { kind: 'help', topic: first };
  if (second !== undefined) throw new UsageError(`${first}: unexpected argument ${JSON.stringify(second)}`);

  const connection = connectionSpec(v);
  const output: OutputSpec = { json: v.json ?? false, transcript: v.transcript ?? false };
  if (first === 'verify') {
    const stray = SEND_ONLY.filter((k) => v[k] !== undefined);
    if (stray.length > 0) throw new UsageError(`verify: --${stray[0]} is only for the send command`);
    return { kind: 'verify', connection, output };
  }
  return { kind: 'send', connection, message: messageSpec(v), output };
}

type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>
>['values'];

const OAUTH_FLAGS = [
  'oauth-token-url',
  'oauth-tenant',
  'oauth-client-id',
  'oauth-client-secret-env',
  'oauth-scope',
] as const;
/** What a secret file already says: these flags cannot be combined with --secret-file. */
const SECRET_FILE_CONFLICTS = [
  'url',
  'host',
  'port',
  'security',
  'user',
  'password-env',
  'token-env',
  'auth',
  'ca',
  ...OAUTH_FLAGS,
] as const;

function connectionSpec(v: Values): ConnectionSpec {
  const timeoutMs = parseTimeout(v.timeout);
  if (v['secret-file'] !== undefined) return secretFileSpec(v, timeoutMs);
  const { host, port, security, user } = serverOf(v);
  const { auth, secretEnv, oauth } = credentialsOf(v, user);
  const spec: ConnectionSpec = {
    host,
    port,
    security,
    timeoutMs,
    allowPlaintext: v['allow-plaintext'] ?? false,
  };
  if (user !== undefined) spec.user = user;
  if (secretEnv !== undefined) spec.secretEnv = secretEnv;
  if (oauth !== undefined) spec.oauth = oauth;
  if (auth !== undefined) spec.auth = auth;
  if (v.ca !== undefined) spec.caFile = v.ca;
  if (v.ehlo !== undefined) spec.ehlo = parseEhlo(v.ehlo);
  return spec;
}

/** `--secret-file`: the file says where and as whom; only the EHLO name, timeout and plaintext switch may be added. */
function secretFileSpec(v: Values, timeoutMs: number): ConnectionSpec {
  const clash = SECRET_FILE_CONFLICTS.find((k) => v[k] !== undefined);
  if (clash) throw new UsageError(`--secret-file and --${clash} cannot be combined (the file says it)`);
  if (v['secret-file'] === '') throw new UsageError('--secret-file needs a file name');
  const spec: ConnectionSpec = {
    secretFile: v['secret-file']!,
    host: '',
    port: 0,
    security: 'starttls',
    timeoutMs,
    allowPlaintext: v['allow-plaintext'] ?? false,
  };
  if (v.ehlo !== undefined) spec.ehlo = parseEhlo(v.ehlo);
  return spec;
}

/** The server from `--url` or `--host`/`--port`/`--security` (and the user from the URL or `--user`). */
function serverOf(v: Values): { host: string; port: number; security: Security; user: string | undefined } {
  let host: string | undefined;
  let port: number | undefined;
  let security: Security | undefined;
  let user: string | undefined;
  if (v.url !== undefined) {
    for (const k of ['host', 'port', 'user'] as const) {
      if (v[k] !== undefined)
        throw new UsageError(`--url and --${k} cannot be combined (the URL carries the ${k})`);
    }
    const u = parseSmtpUrl(v.url);
    ({ host, port, security } = u);
    user = u.user;
  } else {
    host = v.host;
    if (host === undefined || host === '')
      throw new UsageError('no server: give --url smtp://user@host:587 or --host');
    user = v.user;
  }
  if (v.security !== undefined) {
    if (v.security !== 'starttls' && v.security !== 'tls' && v.security !== 'none') {
      throw new UsageError(`--security must be starttls, tls or none (got ${JSON.stringify(v.security)})`);
    }
    security = v.security;
  }
  security ??= 'starttls';
  if (v.port !== undefined) port = parsePort(v.port);
  port ??= security === 'tls' ? 465 : 587;
  return { host, port, security, user };
}

/** `--auth` and where its secret comes from: `--password-env`, `--token-env`, or the `--oauth-*` grant. */
function credentialsOf(
  v: Values,
  user: string | undefined,
): { auth?: AuthChoice; secretEnv?: string; oauth?: OAuthSpec } {
  let auth: AuthChoice | undefined;
  if (v.auth !== undefined) {
    const a = v.auth.toLowerCase();
    if (a !== 'plain' && a !== 'login' && a !== 'xoauth2') {
      throw new UsageError(`--auth must be plain, login or xoauth2 (got ${JSON.stringify(v.auth)})`);
    }
    auth = a;
  }
  if (auth !== undefined && user === undefined)
    throw new UsageError('--auth needs a user (--user or smtp://user@host)');
  let secretEnv: string | undefined;
  const oauthGiven = OAUTH_FLAGS.filter((k) => v[k] !== undefined);
  if (oauthGiven.length > 0 && auth !== 'xoauth2') {
    throw new UsageError(`--${oauthGiven[0]} is only used with --auth xoauth2`);
  }
  let oauth: OAuthSpec | undefined;
  if (auth === 'xoauth2') {
    if (v['password-env'] !== undefined)
      throw new UsageError('--auth xoauth2 takes --token-env, not --password-env');
    if (v['token-env'] !== undefined && oauthGiven.length > 0) {
      throw new UsageError('--token-env (a token you have) and --oauth-* (fetch one) cannot be combined');
    }
    if (oauthGiven.length > 0) oauth = oauthSpec(v);
    else if (v['token-env'] === undefined) {
      throw new UsageError(
        '--auth xoauth2 needs --token-env NAME (the access token) or --oauth-client-id, ' +
          '--oauth-client-secret-env and --oauth-token-url/--oauth-tenant (fetch one)',
      );
    } else secretEnv = envName(v['token-env'], '--token-env');
  } else {
    if (v['token-env'] !== undefined) throw new UsageError('--token-env is only used with --auth xoauth2');
    if (v['password-env'] !== undefined) secretEnv = envName(v['password-env'], '--password-env');
  }
  if (secretEnv !== undefined && user === undefined) {
    throw new UsageError('a password/token was given but no user (--user or smtp://user@host)');
  }
  const out: { auth?: AuthChoice; secretEnv?: string; oauth?: OAuthSpec } = {};
  if (auth !== undefined) out.auth = auth;
  if (secretEnv !== undefined) out.secretEnv = secretEnv;
  if (oauth !== undefined) out.oauth = oauth;
  return out;
}

function oauthSpec(v: Values): OAuthSpec {
  const clientId = v['oauth-client-id'];
  const secretEnv = v['oauth-client-secret-env'];
  if (clientId === undefined || clientId === '')
    throw new UsageError('--auth xoauth2 with --oauth-*: --oauth-client-id is required');
  if (secretEnv === undefined) {
    throw new UsageError(
      '--oauth-client-secret-env NAME is required (the client secret is never taken on the command line)',
    );
  }
  if (v['oauth-token-url'] === undefined && v['oauth-tenant'] === undefined) {
    throw new UsageError('--oauth-token-url URL or --oauth-tenant TENANT (Microsoft Entra ID) is required');
  }
  const o: OAuthSpec = { clientId, clientSecretEnv: envName(secretEnv, '--oauth-client-secret-env') };
  if (v['oauth-token-url'] !== undefined) o.tokenUrl = v['oauth-token-url'];
  if (v['oauth-tenant'] !== undefined) o.tenant = v['oauth-tenant'];
  if (v['oauth-scope'] !== undefined) o.scope = v['oauth-scope'];
  return o;
}

function parseTimeout(t: string | undefined): number {
  if (t === undefined) return DEFAULT_TIMEOUT_SECONDS * 1000;
  const s = Number(t);
  if (!/^\d+(\.\d+)?$/.test(t) || !(s > 0) || s > 3600) {
    throw new UsageError(`--timeout must be seconds between 0 and 3600 (got ${JSON.stringify(t)})`);
  }
  return Math.round(s * 1000);
}

function parseEhlo(ehlo: string): string {
  if (!/^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$|^\[IPv6:[0-9A-Fa-f:.]+\]$/.test(ehlo)) {
    throw new UsageError('--ehlo must be a domain name or an address literal like [192.0.2.1]');
  }
  return ehlo;
}

function messageSpec(v: Values): MessageSpec {
  if (v.from === undefined) throw new UsageError('send: --from is required');
  const to = v.to ?? [];
  const cc = v.cc ?? [];
  const bcc = v.bcc ?? [];
  if (to.length + cc.length + bcc.length === 0)
    throw new UsageError('send: at least one --to (or --cc/--bcc) is required');
  if (v.subject === undefined) throw new UsageError('send: --subject is required');
  if (v.text === undefined && v.html === undefined)
    throw new UsageError('send: --text or --html is required');
  const m: MessageSpec = { from: v.from, to, cc, bcc, subject: v.subject, attach: v.attach ?? [] };
  if (v['reply-to'] !== undefined) m.replyTo = v['reply-to'];
  if (v.text !== undefined) m.text = v.text;
  if (v.html !== undefined) m.html = v.html;
  return m;
}

function parsePort(s: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > 65535)
    throw new UsageError(`--port must be 1-65535 (got ${JSON.stringify(s)})`);
  return n;
}

function envName(s: string, flag: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) {
    throw new UsageError(`${flag} takes the NAME of an environment variable, not its value`);
  }
  return s;
}
