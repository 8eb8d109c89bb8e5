/**
 * The local SMTP server (npm `smtp-server`) that catches every message the handler sends: STARTTLS with the
 * DEV-ONLY localhost certificate, AUTH required (dev user/password), messages kept in memory (the last N),
 * parsed with `mailparser` alongside their raw source.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';
import { ListenerSwitch } from './listener-switch.ts';

const certDir = fileURLToPath(new URL('../certs/dev/', import.meta.url));

/** DEV ONLY: the committed test CA and the localhost certificate it signed. */
export const DEV_TLS = {
  caPath: `${certDir}ca.pem`,
  certPath: `${certDir}localhost.pem`,
  keyPath: `${certDir}localhost.key`,
};

/** DEV ONLY credentials the local SMTP server accepts. */
export const DEV_SMTP_USER = 'dev';
export const DEV_SMTP_PASSWORD = 'dev-password';

/** Largest message the catcher accepts (advertised as SIZE). */
export const MAX_MESSAGE_BYTES = 25 * 1024 * 1024;

export interface CaughtAttachment {
  filename: string;
  contentType: string;
  size: number;
  content: Buffer;
}

export interface CaughtMessage {
  id: string;
  receivedAt: string;
  /** SMTP envelope as the client gave it. */
  envelope: { mailFrom: string; rcptTo: string[] };
  /** Session facts worth seeing: was it TLS, who authenticated. */
  session: { secure: boolean; user: string | undefined; clientHostname: string };
  raw: Buffer;
  parsed: ParsedMail;
}

export interface MessageSummary {
  id: string;
  from: string;
  to: string;
  subject: string;
  date: string;
  receivedAt: string;
  attachments: number;
  /** `<…@…>`: the key of the message's status (`GET /messages/{messageId}`). */
  messageId?: string;
}

export function summarize(m: CaughtMessage): MessageSummary {
  return {
    id: m.id,
    from: m.parsed.from?.text ?? m.envelope.mailFrom,
    to: addressText(m.parsed.to) || m.envelope.rcptTo.join(', '),
    subject: m.parsed.subject ?? '',
    date: (m.parsed.date ?? new Date(m.receivedAt)).toISOString(),
    receivedAt: m.receivedAt,
    attachments: m.parsed.attachments.length,
    messageId: m.parsed.messageId,
  };
}

export function addressText(a: ParsedMail['to']): string {
  if (!a) return '';
  return Array.isArray(a) ? a.map((x) => x.text).join(', ') : a.text;
}

/** In-memory store, newest first, bounded in count and in raw bytes. Emits `message` with the new message. */
export class MessageStore extends EventEmitter {
  readonly #messages: CaughtMessage[] = [];
  #bytes = 0;
  constructor(
    readonly limit = 200,
    readonly maxBytes = 256 * 1024 * 1024,
  ) {
    super();
  }
  add(m: CaughtMessage): void {
    this.#messages.unshift(m);
    this.#bytes += m.raw.length;
    while (this.#messages.length > this.limit || (this.#bytes > this.maxBytes && this.#messages.length > 1)) {
      this.#bytes -= this.#messages.pop()!.raw.length;
    }
    this.emit('message', m);
  }
  /** Raw bytes held. */
  get bytes(): number {
    return this.#bytes;
  }
  list(): CaughtMessage[] {
    return [...this.#messages];
  }
  get(id: string): CaughtMessage | undefined {
    return this.#messages.find((m) => m.id === id);
  }
  clear(): void {
    this.#messages.length = 0;
    this.#bytes = 0;
    this.emit('clear');
  }
}

export interface MailCatcher {
  port: number;
  store: MessageStore;
  /** Refuse connections (`down()`) and take them again (`up()`): `npm start -- --smtp-down`, the inbox button. */
  listener: ListenerSwitch;
  /** SMTP sessions open now, and the most ever open at once. */
  sessions: { open: number; max: number };
  close(): Promise<void>;
}

function envelopeAddress(a: SMTPServerAddress | false): string {
  return a ? a.address : '';
}

type OnData = NonNullable<ConstructorParameters<typeof SMTPServer>[0]>['onData'];
type DataArgs = Parameters<NonNullable<OnData>>;

/** One message's data: bounded, parsed, stored; answered with its id (552 over the size limit). */
function receive(
  stream: DataArgs[0],
  session: DataArgs[1],
  store: MessageStore,
  callback: DataArgs[2],
): void {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('error', (err) => callback(err));
  stream.on('end', () => {
    if ((stream as { sizeExceeded?: boolean }).sizeExceeded) {
      callback(Object.assign(new Error('Message exceeds fixed maximum message size'), { responseCode: 552 }));
      return;
    }
    const raw = Buffer.concat(chunks);
    simpleParser(raw)
      .then((parsed) => {
        const id = randomUUID();
        store.add({
          id,
          receivedAt: new Date().toISOString(),
          envelope: {
            mailFrom: envelopeAddress(session.envelope.mailFrom),
            rcptTo: session.envelope.rcptTo.map((r) => r.address),
          },
          session: {
            secure: session.secure,
            user: typeof session.user === 'string' ? session.user : undefined,
            clientHostname: session.hostNameAppearsAs || session.clientHostname,
          },
          raw,
          parsed,
        });
        callback(null, `Message queued as ${id}`);
      })
      .catch((err: unknown) => callback(err instanceof Error ? err : new Error(String(err))));
  });
}

export async function startMailCatcher(opts: {
  port: number;
  host?: string;
  limit?: number;
}): Promise<MailCatcher> {
  const store = new MessageStore(opts.limit ?? 200);
  const sessions = { open: 0, max: 0 };
  const server = new SMTPServer({
    onConnect(_session, callback) {
      sessions.open++;
      sessions.max = Math.max(sessions.max, sessions.open);
      callback();
    },
    onClose() {
      sessions.open--;
    },
    name: 'localhost',
    banner: 'smtp-send-endpoint local mail catcher (DEV ONLY)',
    secure: false,
    key: readFileSync(DEV_TLS.keyPath),
    cert: readFileSync(DEV_TLS.certPath),
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: false,
    size: MAX_MESSAGE_BYTES,
    logger: false,
    closeTimeout: 500,
    disabledCommands: [],
    onAuth(auth, _session, callback) {
      if (auth.username === DEV_SMTP_USER && auth.password === DEV_SMTP_PASSWORD) {
        callback(null, { user: auth.username });
      } else {
        callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      }
    },
    onData(stream, session, callback) {
      receive(stream, session, store, callback);
    },
  });
  server.on('error', () => {
    // Per-connection errors (a client hanging up mid-session…) are not fatal to the catcher.
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.server.once('error', onError);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.server.off('error', onError);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;
  const listener = new ListenerSwitch(server.server);
  return {
    port,
    store,
    listener,
    sessions,
    close: async () => {
      await listener.up();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
