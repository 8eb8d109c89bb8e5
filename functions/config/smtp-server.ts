/**
 * The SMTP server the configuration may name (`smtp`), and reading just that part of the configuration at the very
 * start of a cold start, before the rest of the code (and the whole schema, `endpoint.ts`) is loaded: the TCP
 * connection to it can then open while the code loads.
 */
import { isIP } from 'node:net';
import * as v from 'valibot';
import { isLoopback } from '../smtp/host.ts';
import { readEndpointConfigJson } from './endpoint-source.ts';

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/u;

/**
 * The SMTP server the secret points at, optional: with it, a cold start opens the connection (TCP, TLS, EHLO)
 * while the secret is being fetched, and AUTH waits for the secret. `clientName` is the EHLO name the secret gives
 * (its `clientName`, else the domain of its `from`); a server that is not on this host needs it. When the secret
 * names another server or EHLO name, or has a `ca`, that connection is closed unused and the send connects as the
 * secret says.
 */
export const SmtpServerSchema = v.pipe(
  v.strictObject({
    host: v.pipe(
      v.string(),
      v.check((s) => isIP(s) !== 0 || HOSTNAME.test(s), 'must be a host name or an IP address'),
    ),
    port: v.optional(
      v.pipe(
        v.number(),
        v.integer('must be a port number'),
        v.minValue(1),
        v.maxValue(65535, 'must be a port number'),
      ),
    ),
    security: v.optional(v.picklist(['starttls', 'tls'])),
    clientName: v.optional(
      v.pipe(v.string(), v.regex(HOSTNAME, 'must be a domain name (the EHLO name the secret gives)')),
    ),
  }),
  v.check(
    (s) => isLoopback(s.host) || s.clientName !== undefined,
    'clientName is required for a server that is not on this host (the EHLO name the secret gives)',
  ),
);

export type SmtpServer = v.InferOutput<typeof SmtpServerSchema>;

/**
 * The configuration's `smtp` server, validated by the same schema as the whole configuration; undefined when the
 * configuration names none, or cannot be read, or is invalid (the whole configuration's validation, later in the
 * cold start, reports why).
 */
export function smtpServerOfConfig(env: NodeJS.ProcessEnv): SmtpServer | undefined {
  let value: unknown;
  try {
    value = readEndpointConfigJson(env).value;
  } catch {
    return undefined;
  }
  const smtp = typeof value === 'object' && value !== null ? (value as { smtp?: unknown }).smtp : undefined;
  if (smtp === undefined) return undefined;
  const result = v.safeParse(SmtpServerSchema, smtp);
  return result.success ? result.output : undefined;
}
