/**
 * The warm SMTP session kept in module scope. One `SmtpClient` per SMTP settings revision: when the secret
 * rotates, the old session is closed and a new one opens with the new credentials.
 * `SMTP_REUSE=false` turns reuse off (every send opens and QUITs its own session); `SMTP_IDLE_SECONDS` bounds how
 * long an idle session is kept.
 */
import { SmtpClient } from '../smtp/index.ts';
import type { BatchItemResult, ConnectionOptions, OutgoingMessage, Security } from '../smtp/types.ts';
import type { SmtpSettings } from './types.ts';

export interface TransportOptions {
  reuse: boolean;
  idleTimeoutMs: number;
}

export function transportOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): TransportOptions {
  const reuse = !/^(false|0|no|off)$/iu.test(env.SMTP_REUSE ?? '');
  const idle = Number(env.SMTP_IDLE_SECONDS ?? '');
  return { reuse, idleTimeoutMs: Number.isFinite(idle) && idle > 0 ? idle * 1000 : 60_000 };
}

/** The SMTP server as the configuration names it, before the secret (with the credentials) is known. */
export interface SmtpServerHint {
  host: string;
  port?: number;
  security?: Security;
  clientName?: string;
}

/** How long a connection opened ahead may take (TCP + TLS + EHLO); the first send waits for it at most this. */
export const PRECONNECT_BUDGET_MS = 5000;

const normalized = (c: ConnectionOptions | SmtpServerHint) => {
  const security = c.security ?? 'starttls';
  return JSON.stringify([
    c.host.toLowerCase(),
    c.port ?? (security === 'tls' ? 465 : 587),
    security,
    c.clientName,
  ]);
};

/**
 * The secret's connection is the hinted server, and nothing else about the connection differs (no `ca`, no
 * other TLS name, no other option): only then may the connection opened ahead carry its credentials.
 */
function sameServer(hint: SmtpServerHint, c: ConnectionOptions): boolean {
  const { auth: _auth, host: _h, port: _p, security: _s, clientName: _n, ...rest } = c;
  return Object.values(rest).every((x) => x === undefined) && normalized(hint) === normalized(c);
}

/** The part of the client's batch outcome this layer reads (the client returns more). */
export type SessionOutcome = { results: BatchItemResult[]; roundTrips: number; reused: boolean };

export class SmtpTransport {
  #current: { revision: string; client: SmtpClient } | undefined;
  /** A connection opened before the first settings arrived (`preconnect`), not yet adopted or dropped. */
  #ahead: { hint: SmtpServerHint; client: SmtpClient } | undefined;
  readonly #options: TransportOptions;

  constructor(options: TransportOptions) {
    this.#options = options;
  }

  /**
   * Cold start: open the SMTP connection (TCP, TLS, EHLO) to the configured server while the secret is still being
   * fetched. The first send adopts it when the secret names the same server with nothing else different
   * (credentials are then given to it: AUTH waits for the secret); otherwise it is closed unused. Needs reuse.
   */
  preconnect(hint: SmtpServerHint): void {
    if (!this.#options.reuse || this.#current || this.#ahead) return;
    let client: SmtpClient;
    try {
      client = new SmtpClient({ ...hint, reuse: true, idleTimeoutMs: this.#options.idleTimeoutMs });
    } catch {
      return; // options the SMTP layer refuses (the configuration schema should have): no connection ahead
    }
    this.#ahead = { hint, client };
    void client.connect({ deadline: Date.now() + PRECONNECT_BUDGET_MS });
  }

  #client(settings: SmtpSettings): SmtpClient {
    if (this.#current?.revision === settings.revision) return this.#current.client;
    const old = this.#current?.client;
    if (old) void old.close().catch(() => {});
    const ahead = this.#ahead;
    this.#ahead = undefined;
    if (ahead && sameServer(ahead.hint, settings.connection)) {
      if (settings.connection.auth) ahead.client.useCredentials(settings.connection.auth);
      this.#current = { revision: settings.revision, client: ahead.client };
      return ahead.client;
    }
    if (ahead) void ahead.client.close().catch(() => {});
    const o = this.#options;
    const client = new SmtpClient({ ...settings.connection, reuse: o.reuse, idleTimeoutMs: o.idleTimeoutMs });
    this.#current = { revision: settings.revision, client };
    return client;
  }

  /** Send `msgs` over one session (the warm one when it is still good); one result per message. */
  sendBatch(settings: SmtpSettings, msgs: OutgoingMessage[], deadline: number): Promise<SessionOutcome> {
    return this.#client(settings).sendBatch(msgs, { deadline });
  }

  /** Close the warm session and one opened ahead (tests, shutdown). */
  async close(): Promise<void> {
    const c = this.#current?.client;
    const a = this.#ahead?.client;
    this.#current = undefined;
    this.#ahead = undefined;
    if (c) await c.close();
    if (a) await a.close();
  }
}
