/**
 * The SMTP secret: a JSON string in Secrets Manager (id in `SMTP_SECRET_ID`):
 * `{ host, port?, security?, username, password, from, fromName?, clientName?, ca? }`.
 * Validation errors name the bad fields and never echo a value.
 */
import * as v from 'valibot';
import { lineBreakIn } from '../mime/index.ts';
import { SendError } from '../send/errors.ts';
import type { SmtpSettings, SmtpSettingsSource } from '../send/types.ts';
import { describeIssues, formatIssues } from './issues.ts';
import type { SecretStore } from './secrets.ts';

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

export const SmtpSecretSchema = v.object({
  host: OneLine,
  port: v.optional(Port),
  security: v.optional(v.picklist(['starttls', 'tls', 'none'])),
  username: OneLine,
  password: Text,
  from: v.pipe(
    OneLine,
    v.regex(/^[^\s@<>]+@[^\s@<>]+$/u, 'must be a plain address like noreply@example.com'),
  ),
  fromName: v.optional(v.pipe(v.string(), oneLine)),
  clientName: v.optional(OneLine),
  ca: v.optional(v.pipe(v.string(), v.includes('-----BEGIN CERTIFICATE-----', 'must be PEM certificate(s)'))),
});

export type SmtpSecret = v.InferOutput<typeof SmtpSecretSchema>;

/** Parse and validate the secret's JSON text into connection settings. Throws `configuration_error`. */
export function parseSmtpSecret(text: string, id = 'SMTP secret', revision = ''): SmtpSettings {
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
  // Defaults: 587 + STARTTLS, or 465 + implicit TLS (RFC 8314); port 465 without `security` means TLS.
  const security = s.security ?? (s.port === 465 ? 'tls' : 'starttls');
  const port = s.port ?? (security === 'tls' ? 465 : 587);
  const settings: SmtpSettings = {
    connection: {
      host: s.host,
      port,
      security,
      auth: { username: s.username, password: s.password },
    },
    from: s.from,
    revision,
  };
  if (s.clientName) settings.connection.clientName = s.clientName;
  if (s.ca) settings.connection.ca = s.ca;
  if (s.fromName) settings.fromName = s.fromName;
  return settings;
}

/** SMTP settings from a secret in the store, parsed once per fetched version. */
export class SecretSmtpSettings implements SmtpSettingsSource {
  #parsed: { raw: string; settings: SmtpSettings } | undefined;

  constructor(
    readonly store: SecretStore,
    readonly secretId: string,
  ) {}

  async get(): Promise<SmtpSettings> {
    return this.#parse(await this.store.get(this.secretId));
  }

  async refresh(): Promise<SmtpSettings> {
    return this.#parse(await this.store.refresh(this.secretId));
  }

  #parse(secret: { value: string; versionId?: string; fetchedAt: number }): SmtpSettings {
    if (this.#parsed?.raw === secret.value) return this.#parsed.settings;
    const settings = parseSmtpSecret(
      secret.value,
      `secret ${this.secretId}`,
      `${secret.versionId ?? 'v'}@${secret.fetchedAt}`,
    );
    this.#parsed = { raw: secret.value, settings };
    return settings;
  }
}
