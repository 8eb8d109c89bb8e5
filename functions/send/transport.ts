/**
 * The warm SMTP session kept in module scope. One `SmtpClient` per SMTP settings revision: when the secret
 * rotates, the old session is closed and a new one opens with the new credentials.
 * `SMTP_REUSE=false` turns reuse off (every send opens and QUITs its own session); `SMTP_IDLE_SECONDS` bounds how
 * long an idle session is kept.
 */
import { defaultPort } from '../smtp/host.ts';
import { SmtpClient } from '../smtp/index.ts';
import type { TcpOpening } from '../smtp/transport.ts';
import type { BatchItemResult, ConnectionOptions, OutgoingMessage } from '../smtp/types.ts';
import { PRECONNECT_BUDGET_MS, type SmtpServerHint, type TransportOptions } from './transport-options.ts';
import type { SmtpSettings } from './types.ts';

const normalized = (c: ConnectionOptions | SmtpServerHint) => {
  const security = c.security ?? 'starttls';
  return JSON.stringify([c.host.toLowerCase(), c.port ?? defaultPort(security), security, c.clientName]);
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
   * fetched — on the TCP connection `opening`, when the cold start already started one to it. The first send adopts
   * it when the secret names the same server with nothing else different (credentials are then given to it: AUTH
   * waits for the secret); otherwise it is closed unused. Needs reuse.
   */
  preconnect(hint: SmtpServerHint, opening?: TcpOpening): void {
    let client: SmtpClient | undefined;
    try {
      if (this.#options.reuse && !this.#current && !this.#ahead) {
        client = new SmtpClient({ ...hint, reuse: true, idleTimeoutMs: this.#options.idleTimeoutMs });
      }
    } catch {
      // options the SMTP layer refuses (the configuration schema should have): no connection ahead
    }
    if (!client) {
      opening?.close();
      return;
    }
    this.#ahead = { hint, client };
    void client.connect({ deadline: Date.now() + PRECONNECT_BUDGET_MS }, opening);
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
