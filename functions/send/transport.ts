/**
 * The warm SMTP session kept in module scope. One `SmtpClient` per SMTP settings revision: when the secret
 * rotates, the old session is closed and a new one opens with the new credentials.
 * `SMTP_REUSE=false` turns reuse off (every send opens and QUITs its own session); `SMTP_IDLE_SECONDS` bounds how
 * long an idle session is kept.
 */
import { SmtpClient } from '../smtp/index.ts';
import type { BatchItemResult, OutgoingMessage } from '../smtp/types.ts';
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

/** The part of the client's batch outcome this layer reads (the client returns more). */
export type SessionOutcome = { results: BatchItemResult[]; roundTrips: number; reused: boolean };

export class SmtpTransport {
  #current: { revision: string; client: SmtpClient } | undefined;
  readonly #options: TransportOptions;

  constructor(options: TransportOptions) {
    this.#options = options;
  }

  #client(settings: SmtpSettings): SmtpClient {
    if (this.#current?.revision === settings.revision) return this.#current.client;
    const old = this.#current?.client;
    if (old) void old.close().catch(() => {});
    const o = this.#options;
    const client = new SmtpClient({ ...settings.connection, reuse: o.reuse, idleTimeoutMs: o.idleTimeoutMs });
    this.#current = { revision: settings.revision, client };
    return client;
  }

  /** Send `msgs` over one session (the warm one when it is still good); one result per message. */
  sendBatch(settings: SmtpSettings, msgs: OutgoingMessage[], deadline: number): Promise<SessionOutcome> {
    return this.#client(settings).sendBatch(msgs, { deadline });
  }

  /** Close the warm session (tests, shutdown). */
  async close(): Promise<void> {
    const c = this.#current?.client;
    this.#current = undefined;
    if (c) await c.close();
  }
}
