/**
 * A real SMTP peer for tests: the npm `smtp-server` on 127.0.0.1, ephemeral port.
 *
 * Defaults: STARTTLS with the DEV-ONLY certificate certs/dev/localhost.pem (trust it with `TEST_CA`), AUTH PLAIN and
 * LOGIN after TLS with `TEST_USER` / `TEST_PASSWORD`, PIPELINING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES.
 * Every accepted message is captured (`messages`: envelope + raw bytes as received after un-dot-stuffing), and
 * so are AUTH attempts and MAIL FROM commands (to assert that nothing was sent after a refusal).
 *
 * ```ts
 * const srv = await startSmtpServer();                       // STARTTLS + AUTH
 * await sendMail({ host: '127.0.0.1', port: srv.port, ca: TEST_CA, auth: TEST_AUTH }, msg);
 * srv.messages[0].raw                                        // Buffer
 * await srv.close();
 * ```
 * Recipients whose local part starts with `reject` get `550 5.1.1`, `defer` gets `451 4.2.0`.
 * smtp-server has no CHUNKING (BDAT): see test/support/chunking-server.ts for that.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

const certDir = fileURLToPath(new URL('../../certs/dev/', import.meta.url));
/** DEV-ONLY test CA (PEM) that signed localhost.pem and wrong.pem. */
export const TEST_CA = readFileSync(`${certDir}ca.pem`, 'utf8');
export const TEST_CERTS = {
  localhost: { key: readFileSync(`${certDir}localhost.key`), cert: readFileSync(`${certDir}localhost.pem`) },
  wrong: { key: readFileSync(`${certDir}wrong.key`), cert: readFileSync(`${certDir}wrong.pem`) },
};
export const TEST_USER = 'tester@example.com';
export const TEST_PASSWORD = 'correct horse battery staple';
export const TEST_AUTH = { username: TEST_USER, password: TEST_PASSWORD };

export interface ReceivedMessage {
  envelope: { from: string; to: string[] };
  /** The message as the server stored it (dot-stuffing removed). */
  raw: Buffer;
  secure: boolean;
  user?: string;
  /** MAIL FROM parameters (upper-case keys), e.g. { SIZE: '123', BODY: '8BITMIME' }. */
  mailParams: Record<string, unknown>;
  /** The name the client gave in EHLO/HELO. */
  ehlo: string;
}

export interface TestSmtpServerOptions {
  /** Implicit TLS (like port 465). Default false (STARTTLS). */
  secure?: boolean;
  /** Certificate to present. Default 'localhost'. */
  cert?: 'localhost' | 'wrong';
  hideSTARTTLS?: boolean;
  hidePIPELINING?: boolean;
  hide8BITMIME?: boolean;
  hideSMTPUTF8?: boolean;
  hideENHANCEDSTATUSCODES?: boolean;
  /** Offered AUTH mechanisms. Default ['PLAIN', 'LOGIN']. Empty array: AUTH disabled (not advertised). */
  authMethods?: string[];
  /** Accept MAIL without AUTH. Default false. */
  authOptional?: boolean;
  /** Allow AUTH in clear text. Default false. */
  allowInsecureAuth?: boolean;
  /** SIZE limit to advertise and enforce. */
  size?: number;
  /** Extra smtp-server options. */
  extra?: Partial<SMTPServerOptions>;
}

export interface TestSmtpServer {
  host: '127.0.0.1';
  port: number;
  messages: ReceivedMessage[];
  authAttempts: { method: string; username: string }[];
  mailFrom: string[];
  connections: number;
  server: SMTPServer;
  close(): Promise<void>;
}

export async function startSmtpServer(o: TestSmtpServerOptions = {}): Promise<TestSmtpServer> {
  const state: Omit<TestSmtpServer, 'port' | 'server' | 'close'> = {
    host: '127.0.0.1',
    messages: [],
    authAttempts: [],
    mailFrom: [],
    connections: 0,
  };
  const authMethods = o.authMethods ?? ['PLAIN', 'LOGIN'];
  const certs = TEST_CERTS[o.cert ?? 'localhost'];
  const opts: SMTPServerOptions = {
    secure: !!o.secure,
    key: certs.key,
    cert: certs.cert,
    logger: false,
    banner: 'test server ready',
    authMethods: authMethods.length ? authMethods : ['PLAIN'],
    authOptional: o.authOptional ?? false,
    allowInsecureAuth: o.allowInsecureAuth ?? false,
    hideSTARTTLS: o.hideSTARTTLS ?? false,
    hidePIPELINING: o.hidePIPELINING ?? false,
    hide8BITMIME: o.hide8BITMIME ?? false,
    hideSMTPUTF8: o.hideSMTPUTF8 ?? false,
    hideENHANCEDSTATUSCODES: o.hideENHANCEDSTATUSCODES ?? false,
    closeTimeout: 100,
    ...(o.size !== undefined ? { size: o.size } : {}),
    ...(authMethods.length === 0 ? { disabledCommands: ['AUTH'], authOptional: true } : {}),
    onConnect(_session, cb) {
      state.connections++;
      cb();
    },
    onAuth(auth, _session, cb) {
      state.authAttempts.push({ method: auth.method, username: auth.username ?? '' });
      if (auth.username === TEST_USER && auth.password === TEST_PASSWORD) cb(null, { user: auth.username });
      else cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onMailFrom(address, _session, cb) {
      state.mailFrom.push(address.address);
      cb();
    },
    onRcptTo(address, _session, cb) {
      const local = address.address.split('@')[0] ?? '';
      if (local.startsWith('reject')) {
        cb(Object.assign(new Error('5.1.1 No such user'), { responseCode: 550 }));
      } else if (local.startsWith('defer')) {
        cb(Object.assign(new Error('4.2.0 Try again later'), { responseCode: 451 }));
      } else cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const tooBig = (stream as unknown as { sizeExceeded?: boolean }).sizeExceeded;
        if (tooBig) {
          cb(Object.assign(new Error('Message too big'), { responseCode: 552 }));
          return;
        }
        const from = session.envelope.mailFrom;
        const msg: ReceivedMessage = {
          envelope: {
            from: from ? from.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
          },
          raw: Buffer.concat(chunks),
          secure: session.secure,
          mailParams: (from ? (from.args as Record<string, unknown>) : {}) || {},
          ehlo: session.hostNameAppearsAs,
        };
        if (session.user) msg.user = String(session.user);
        state.messages.push(msg);
        cb(null, `Ok: queued as Q${state.messages.length}`);
      });
    },
    ...o.extra,
  };
  const server = new SMTPServer(opts);
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return Object.assign(state, {
    port,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }) as TestSmtpServer;
}
