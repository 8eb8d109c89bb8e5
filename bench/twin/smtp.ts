/**
 * Twin of functions/smtp for the cold-start comparison: the `SmtpClient` surface the use case needs
 * (functions/send/transport.ts), implemented with nodemailer 10 the way a nodemailer Lambda does
 * it: `createTransport` (pooled, one connection, when the session is kept warm) and `sendMail`.
 * nodemailer errors are mapped onto the product's `SmtpError` so the use case treats them alike.
 */
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { SmtpError } from '../../functions/smtp/error.ts';
import type { ConnectionOptions, Deadline, OutgoingMessage, Phase } from '../../functions/smtp/types.ts';
import { mailOptionsFor } from './mime.ts';

interface Outcome {
  accepted: Array<{ address: string; code: number; message: string }>;
  rejected: Array<{ address: string; code: number; message: string }>;
  response: { code: number; lines: string[]; text: string };
  roundTrips: number;
  reused: boolean;
}

type TwinOptions = ConnectionOptions & { reuse?: boolean; idleTimeoutMs?: number };

const PHASE_OF_COMMAND: Record<string, Phase> = {
  CONN: 'connect',
  GREETING: 'greeting',
  EHLO: 'ehlo',
  HELO: 'ehlo',
  STARTTLS: 'starttls',
  AUTH: 'auth',
  'AUTH PLAIN': 'auth',
  'AUTH LOGIN': 'auth',
  'MAIL FROM': 'mail',
  'RCPT TO': 'rcpt',
  DATA: 'data',
  API: 'data',
};

function toSmtpError(e: unknown): SmtpError {
  const err = e as {
    message?: string;
    responseCode?: number;
    command?: string;
    response?: string;
    code?: string;
  };
  const command = (err.command ?? '').toUpperCase();
  const phase = PHASE_OF_COMMAND[command] ?? (err.code === 'EAUTH' ? 'auth' : 'connect');
  const init: ConstructorParameters<typeof SmtpError>[1] = {
    phase,
    kind: err.responseCode ? 'reply' : err.code === 'ETIMEDOUT' ? 'timeout' : 'network',
    // nodemailer does not tell whether the final reply was lost after the body was written.
    delivery: command === 'DATA' && !err.responseCode ? 'unknown' : 'not-sent',
    cause: e,
  };
  if (err.responseCode) init.code = err.responseCode;
  if (err.response) init.serverText = err.response;
  return new SmtpError(err.message ?? 'nodemailer failure', init);
}

export class SmtpClient {
  readonly #transport: ReturnType<typeof nodemailer.createTransport>;
  readonly #reuse: boolean;
  #sent = 0;

  constructor(opts: TwinOptions) {
    this.#reuse = opts.reuse ?? true;
    const auth =
      opts.auth && 'password' in opts.auth
        ? { user: opts.auth.username, pass: opts.auth.password }
        : undefined;
    const options = {
      host: opts.host,
      port: opts.port ?? (opts.security === 'tls' ? 465 : 587),
      secure: opts.security === 'tls',
      requireTLS: opts.security !== 'none',
      name: opts.clientName ?? 'localhost',
      tls: {
        ...(opts.ca ? { ca: opts.ca } : {}),
        ...(opts.servername ? { servername: opts.servername } : {}),
      },
      ...(auth ? { auth } : {}),
      ...(this.#reuse ? { pool: true, maxConnections: 1, idleTimeout: opts.idleTimeoutMs ?? 60_000 } : {}),
    };
    this.#transport = nodemailer.createTransport(options);
  }

  async send(msg: OutgoingMessage, _d?: Deadline): Promise<Outcome> {
    const mail = mailOptionsFor(msg.content) ?? { raw: Buffer.from(msg.content) };
    let info: {
      accepted: Array<string | { address: string }>;
      rejected: Array<string | { address: string }>;
      response: string;
    };
    try {
      info = (await this.#transport.sendMail({
        ...mail,
        envelope: { from: msg.envelope.from, to: msg.envelope.to },
      } as SendMailOptions)) as typeof info;
    } catch (e) {
      throw toSmtpError(e);
    }
    const addr = (a: string | { address: string }) => (typeof a === 'string' ? a : a.address);
    const code = Number.parseInt(info.response, 10) || 250;
    const reused = this.#reuse && this.#sent > 0;
    this.#sent++;
    return {
      accepted: info.accepted.map((a) => ({ address: addr(a), code: 250, message: '' })),
      rejected: info.rejected.map((a) => ({ address: addr(a), code: 550, message: '' })),
      response: { code, lines: [info.response], text: info.response },
      roundTrips: 0,
      reused,
    };
  }

  async sendBatch(msgs: OutgoingMessage[], d?: Deadline) {
    const results = await Promise.all(
      msgs.map((m) =>
        this.send(m, d).then(
          (o) => ({ ok: true as const, ...o }),
          (error: SmtpError) => ({ ok: false as const, error }),
        ),
      ),
    );
    return { results, roundTrips: 0 };
  }

  async close(): Promise<void> {
    this.#transport.close();
  }
}
