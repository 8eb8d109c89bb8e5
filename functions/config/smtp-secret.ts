/**
 * The SMTP secret: a JSON string in Secrets Manager (id in `SMTP_SECRET_ID`):
 * `{ host, port?, security?, username, password | auth, from, fromName?, clientName?, ca?, dkim? }`.
 * `auth` (type `oauth2`) replaces the password with an OAuth grant (oauth-grant.ts); `dkim` is one signing key or
 * two (RSA + Ed25519, a dual signature). Validation errors name the bad fields and never echo a value.
 */
import * as v from 'valibot';
import { type DkimSigner, dkimSigner } from '../mime/dkim.ts';
import { lineBreakIn, MimeError, mailboxDomain } from '../mime/index.ts';
import { SendError } from '../send/errors.ts';
import type { SmtpSettings, SmtpSettingsSource } from '../send/types.ts';
import { PlainAddress } from './address.ts';
import { describeIssues, formatIssues } from './issues.ts';
import { OAuthTokenSource, type TokenSourceOptions } from './oauth-credentials.ts';
import {
  GOOGLE_SCOPE,
  GOOGLE_TOKEN_URL,
  MICROSOFT_SCOPE,
  microsoftTokenUrl,
  type OAuthGrant,
  rs256Key,
  tokenUrlProblem,
} from './oauth-grant.ts';
import { SecretError, type SecretStore, type SecretValue } from './secrets.ts';

const Port = v.pipe(
  v.union([
    v.number(),
    v.pipe(v.string(), v.regex(/^\d{1,5}$/u, 'must be a port number'), v.transform(Number)),
  ]),
  v.integer('must be a port number'),
  v.minValue(1, 'must be a port number (1-65535)'),
  v.maxValue(65535, 'must be a port number (1-65535)'),
);
const Text = v.pipe(v.string(), v.nonEmpty('must not be empty'));
const oneLine = v.check((s: string) => !lineBreakIn(s), 'must be one line');
const OneLine = v.pipe(Text, oneLine);

const TokenUrl = v.pipe(
  Text,
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const problem = tokenUrlProblem(dataset.value);
    if (problem) addIssue({ message: problem });
  }),
);
const Token = v.pipe(Text, v.regex(/^[\x21-\x7e]+$/u, 'must be printable ASCII without spaces'));

const OAuth = {
  type: v.literal('oauth2'),
  tokenUrl: v.optional(TokenUrl),
  scope: v.optional(OneLine),
};
const OAuthSchema = v.variant('grant', [
  v.strictObject({
    ...OAuth,
    grant: v.literal('client_credentials'),
    tenantId: v.optional(v.pipe(OneLine, v.regex(/^[A-Za-z0-9.-]+$/u, 'must be a tenant ID or domain'))),
    clientId: Token,
    clientSecret: Token,
  }),
  v.strictObject({
    ...OAuth,
    grant: v.literal('jwt_bearer'),
    clientEmail: OneLine,
    privateKey: v.pipe(v.string(), v.includes('PRIVATE KEY-----', 'must be a PEM private key')),
    privateKeyId: v.optional(OneLine),
  }),
  v.strictObject({
    ...OAuth,
    grant: v.literal('refresh_token'),
    tokenUrl: TokenUrl,
    clientId: Token,
    clientSecret: v.optional(Token),
    refreshToken: Token,
    writeBack: v.optional(v.boolean()),
  }),
]);

const DkimKey = v.strictObject({ domain: OneLine, selector: OneLine, privateKey: Text });

export const SmtpSecretSchema = v.object({
  host: OneLine,
  port: v.optional(Port),
  security: v.optional(v.picklist(['starttls', 'tls', 'none'])),
  username: OneLine,
  password: v.optional(Text),
  auth: v.optional(OAuthSchema),
  dkim: v.optional(v.union([DkimKey, v.pipe(v.array(DkimKey), v.minLength(1), v.maxLength(2))])),
  from: v.pipe(OneLine, PlainAddress),
  fromName: v.optional(v.pipe(v.string(), oneLine)),
  clientName: v.optional(OneLine),
  ca: v.optional(v.pipe(v.string(), v.includes('-----BEGIN CERTIFICATE-----', 'must be PEM certificate(s)'))),
});

export type SmtpSecret = v.InferOutput<typeof SmtpSecretSchema>;

/** The secret, parsed: settings (without `auth` when an OAuth grant supplies it per token) and the grant. */
export interface ParsedSmtpSecret {
  settings: SmtpSettings;
  oauth?: OAuthGrant;
  /** The SASL user (XOAUTH2 `user=`). */
  username: string;
  /** The secret's JSON as stored (a rotated refresh token is written back into it, other keys unchanged). */
  source: Record<string, unknown>;
}

/** Parse and validate the secret's JSON text into connection settings. Throws `configuration_error`. */
export function parseSmtpSecret(text: string, id = 'SMTP secret', revision = ''): SmtpSettings {
  return parseSmtpSecretText(text, id, revision).settings;
}

/** Parse and validate the secret's JSON text, OAuth grant included. Throws `configuration_error`. */
export function parseSmtpSecretText(text: string, id = 'SMTP secret', revision = ''): ParsedSmtpSecret {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SendError('configuration_error', `${id}: SecretString is not valid JSON`);
  }
  const result = v.safeParse(SmtpSecretSchema, json);
  if (!result.success) {
    throw new SendError('configuration_error', `${id}: ${formatIssues(describeIssues(result.issues))}`);
  }
  const s = result.output;
  const bad = (field: string, message: string) =>
    new SendError('configuration_error', `${id}: ${field}: ${message}`);
  if (s.auth && s.password !== undefined)
    throw bad('password', 'not used with auth.type "oauth2" (remove it)');
  if (!s.auth && s.password === undefined) throw bad('password', 'required (or auth with type "oauth2")');
  const oauth = s.auth ? oauthGrant(s.auth, bad) : undefined;
  const dkim = s.dkim === undefined ? undefined : dkimSigners(s.dkim, bad);
  // Defaults: 587 + STARTTLS, or 465 + implicit TLS (RFC 8314); port 465 without `security` means TLS.
  const security = s.security ?? (s.port === 465 ? 'tls' : 'starttls');
  const port = s.port ?? (security === 'tls' ? 465 : 587);
  const settings: SmtpSettings = {
    connection: {
      host: s.host,
      port,
      security,
    },
    from: s.from,
    revision,
  };
  if (s.password !== undefined) settings.connection.auth = { username: s.username, password: s.password };
  // EHLO with the sender's domain unless the secret names one (the client refuses "localhost" to a remote host).
  const clientName = s.clientName ?? mailboxDomain(s.from);
  if (clientName) settings.connection.clientName = clientName;
  if (s.ca) settings.connection.ca = s.ca;
  if (s.fromName) settings.fromName = s.fromName;
  if (dkim) settings.dkim = dkim;
  const source = json as Record<string, unknown>;
  return { settings, username: s.username, source, ...(oauth ? { oauth } : {}) };
}

type Bad = (field: string, message: string) => SendError;

function oauthGrant(a: NonNullable<SmtpSecret['auth']>, bad: Bad): OAuthGrant {
  switch (a.grant) {
    case 'client_credentials': {
      if (a.tokenUrl === undefined && a.tenantId === undefined) {
        throw bad('auth.tenantId', 'required (or auth.tokenUrl)');
      }
      const tokenUrl = a.tokenUrl ?? microsoftTokenUrl(a.tenantId!);
      const scope = a.scope ?? MICROSOFT_SCOPE;
      return { grant: a.grant, tokenUrl, clientId: a.clientId, clientSecret: a.clientSecret, scope };
    }
    case 'jwt_bearer': {
      let privateKey: ReturnType<typeof rs256Key>;
      try {
        privateKey = rs256Key(a.privateKey);
      } catch (e) {
        throw bad('auth.privateKey', (e as Error).message);
      }
      const g: OAuthGrant = {
        grant: a.grant,
        tokenUrl: a.tokenUrl ?? GOOGLE_TOKEN_URL,
        clientEmail: a.clientEmail,
        privateKey,
        scope: a.scope ?? GOOGLE_SCOPE,
      };
      if (a.privateKeyId) g.privateKeyId = a.privateKeyId;
      return g;
    }
    case 'refresh_token': {
      const g: OAuthGrant = {
        grant: a.grant,
        tokenUrl: a.tokenUrl,
        clientId: a.clientId,
        refreshToken: a.refreshToken,
        writeBack: a.writeBack ?? false,
      };
      if (a.clientSecret !== undefined) g.clientSecret = a.clientSecret;
      if (a.scope !== undefined) g.scope = a.scope;
      return g;
    }
  }
}

function dkimSigners(d: NonNullable<SmtpSecret['dkim']>, bad: Bad): DkimSigner[] {
  const list = Array.isArray(d) ? d : [d];
  const signers = list.map((k, i) => {
    try {
      return dkimSigner(k, Array.isArray(d) ? `dkim[${i}]` : 'dkim');
    } catch (e) {
      if (e instanceof MimeError) throw bad(e.field, e.message.slice(e.field.length + 2));
      throw e;
    }
  });
  if (signers.length === 2 && signers[0]!.algorithm === signers[1]!.algorithm) {
    throw bad('dkim', 'two keys must be one RSA and one Ed25519 (a dual signature)');
  }
  return signers;
}

/** Settings with XOAUTH2 credentials from the token source; the revision changes with every new token. */
export async function withAccessToken(
  parsed: ParsedSmtpSecret,
  tokens: OAuthTokenSource | undefined,
  force = false,
): Promise<SmtpSettings> {
  if (!tokens) return parsed.settings;
  const t = force ? await tokens.refresh() : await tokens.get();
  const s = parsed.settings;
  return {
    ...s,
    connection: {
      ...s.connection,
      auth: { username: parsed.username, accessToken: t.accessToken, mechanism: 'XOAUTH2' },
    },
    revision: `${s.revision}#token${t.serial}`,
  };
}

interface ParsedVersion {
  raw: string;
  parsed: ParsedSmtpSecret;
  tokens?: OAuthTokenSource;
}

/**
 * SMTP settings from a secret in the store, parsed once per fetched version; with an OAuth grant, one token
 * source per version. `refresh()` (after a 535) reads the secret again and, when it has not changed, fetches a
 * new access token.
 */
export class SecretSmtpSettings implements SmtpSettingsSource {
  #version: ParsedVersion | undefined;

  constructor(
    readonly store: SecretStore,
    readonly secretId: string,
    readonly tokenOptions: TokenSourceOptions = {},
  ) {}

  async get(): Promise<SmtpSettings> {
    const v = this.#parse(await this.store.get(this.secretId).catch(smtpSecretFailure));
    return withAccessToken(v.parsed, v.tokens);
  }

  async refresh(): Promise<SmtpSettings> {
    const before = this.#version;
    const v = this.#parse(await this.store.refresh(this.secretId).catch(smtpSecretFailure));
    return withAccessToken(v.parsed, v.tokens, v === before);
  }

  #parse(secret: SecretValue): ParsedVersion {
    if (this.#version?.raw === secret.value) return this.#version;
    const parsed = parseSmtpSecretText(
      secret.value,
      `secret ${this.secretId}`,
      `${secret.versionId ?? 'v'}@${secret.fetchedAt}`,
    );
    const version: ParsedVersion = { raw: secret.value, parsed };
    if (parsed.oauth) {
      version.tokens = new OAuthTokenSource(parsed.oauth, parsed.username, {
        ...this.tokenOptions,
        writeBack: (refreshToken) => this.#writeBack(parsed.source, refreshToken),
      });
    }
    this.#version = version;
    return version;
  }

  /** PutSecretValue with the rotated refresh token (the IAM grant exists only when the construct enables it). */
  async #writeBack(source: Record<string, unknown>, refreshToken: string): Promise<void> {
    const next = { ...source, auth: { ...(source.auth as object), refreshToken } };
    await this.store.put(this.secretId, JSON.stringify(next)).catch(smtpSecretFailure);
  }
}

/**
 * The secret store's failure, named for what it stops: without the SMTP secret the mail server cannot be used
 * (transient: `smtp_unavailable`, retried; otherwise the deployment's `configuration_error`).
 */
function smtpSecretFailure(e: unknown): never {
  if (!(e instanceof SecretError)) throw e;
  if (e.transient) throw new SendError('smtp_unavailable', e.message, { cause: e, retryAfter: e.retryAfter });
  throw new SendError('configuration_error', e.message, { cause: e });
}
