/**
 * The warm SMTP session kept in module scope. One `SmtpClient` per SMTP settings revision: when the secret
 * rotates, the old session is closed and a new one opens with the new credentials.
 * `SMTP_REUSE=false` turns reuse off (every send opens and QUITs its own session); `SMTP_IDLE_SECONDS` bounds how
 * long an idle session is kept.
 */
import { SmtpClient } from '../smtp/index.ts';
import type { BatchItemResult, Deadline, OutgoingMessage, TransactionResult } from '../smtp/types.ts';
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

/** The parts of the client's outcomes this layer reads (the client returns more). */
export type SendOutcome = TransactionResult & { roundTrips: number; reused: boolean };
export type BatchOutcome = { results: BatchItemResult[]; roundTrips: number };

/** Minimal surface of the client used here (lets the session factory be swapped, e.g. for a bench). */
export interface SessionLike {
  send(msg: OutgoingMessage, d?: Deadline): Promise<SendOutcome>;
  sendBatch(msgs: OutgoingMessage[], d?: Deadline): Promise<BatchOutcome>;
  close(): Promise<void>;
}

export class SmtpTransport {
  #current: { revision: string; client: SessionLike } | undefined;
  readonly #options: TransportOptions;
  readonly #factory: (settings: SmtpSettings, options: TransportOptions) => SessionLike;

  constructor(
    options: TransportOptions,
    factory?: (settings: SmtpSettings, options: TransportOptions) => SessionLike,
  ) {
    this.#options = options;
    this.#factory =
      factory ??
      ((settings, o) =>
        new SmtpClient({ ...settings.connection, reuse: o.reuse, idleTimeoutMs: o.idleTimeoutMs }));
  }

  get options(): TransportOptions {
    return this.#options;
  }

  #client(settings: SmtpSettings): SessionLike {
    if (this.#current?.revision === settings.revision) return this.#current.client;
    const old = this.#current?.client;
    if (old) void old.close().catch(() => {});
    const client = this.#factory(settings, this.#options);
    this.#current = { revision: settings.revision, client };
    return client;
  }

  send(settings: SmtpSettings, msg: OutgoingMessage, deadline: number): Promise<SendOutcome> {
    return this.#client(settings).send(msg, { deadline });
  }

  sendBatch(settings: SmtpSettings, msgs: OutgoingMessage[], deadline: number): Promise<BatchOutcome> {
    return this.#client(settings).sendBatch(msgs, { deadline });
  }

  /** Close the warm session (tests, shutdown). */
  async close(): Promise<void> {
    const c = this.#current?.client;
    this.#current = undefined;
    if (c) await c.close();
  }
}
