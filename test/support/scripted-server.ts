/**
 * A scripted SMTP server for fault and exact-byte tests (127.0.0.1, ephemeral port). It speaks enough SMTP
 * (EHLO, STARTTLS, AUTH PLAIN/LOGIN/XOAUTH2, MAIL, RCPT, DATA, BDAT, RSET, NOOP, QUIT) to complete a session by
 * default, and every command can be answered differently by `onCommand` (inject bytes, stay silent, drop, reset,
 * drip a reply slowly). Everything received is recorded per connection.
 *
 * It also counts ROUND TRIPS from the server's side, independently of the client's own count:
 * `roundTrips = 1 (TCP) + TLS handshakes + 1 (greeting) + turns`, where a turn is client data arriving while the
 * server has answered everything it received (the client had to wait for the server). A lone QUIT counts as a turn.
 *
 * ```ts
 * const srv = await startScriptedServer({ extensions: ['PIPELINING', 'CHUNKING'],
 *   onCommand: (cmd) => (cmd.startsWith('RCPT') ? { reply: '451 4.2.0 later\r\n' } : undefined) });
 * … srv.connections[0].commands, .messages, .roundTrips …
 * await srv.close();
 * ```
 */
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterEach } from 'vitest';
import { TEST_CERTS } from './smtp-server.ts';

export type ScriptAction =
  /** Write these bytes verbatim (may hold several replies, or garbage). `upgrade`: then start TLS (STARTTLS). */
  | { reply: string; upgrade?: boolean; close?: boolean }
  /** Say nothing, keep the connection open, and answer nothing after it (a hung server). */
  | { silent: true }
  /** Close (FIN) after writing `reply` if given. */
  | { close: true; reply?: string }
  /** Reset the connection (RST). */
  | { reset: true }
  /** Write `reply` one byte every `everyMs`. */
  | { drip: string; everyMs: number };

export interface ScriptedConnection {
  index: number;
  /** Command lines received, in order, as sent (AUTH payloads included: test data only). */
  commands: string[];
  /** Messages received (DATA un-dot-stuffed, or BDAT chunks joined). */
  messages: Buffer[];
  /** Every byte received, in order (decrypted after TLS). */
  received: Buffer[];
  tls: boolean;
  tlsHandshakes: number;
  turns: number;
  greeted: boolean;
  /** Server-side round-trip count, see the file comment. */
  readonly roundTrips: number;
  /** Write raw bytes now (e.g. an unsolicited 421 while the client is idle). */
  write(s: string): void;
  /** FIN. */
  end(): void;
  /** RST. */
  reset(): void;
  /** Stop this server-side socket from keeping the event loop alive (tests that count client handles). */
  unref(): void;
  closed: Promise<void>;
}

export interface ScriptedServerOptions {
  /** Implicit TLS from the first byte (port 465 style). */
  implicitTls?: boolean;
  cert?: 'localhost' | 'wrong';
  /**
   * Greeting line(s); null = never greet. Default '220 scripted.test ESMTP\r\n'. A function picks it per connection
   * (by index; undefined = the default), e.g. a 421 for the first connection only.
   */
  greeting?: string | null | ((index: number) => string | null | undefined);
  /** Extensions advertised (after TLS, or always for a clear-text session). */
  extensions?: string[];
  /** Extensions before TLS; default: `['STARTTLS', ...extensions without AUTH]` when not implicit TLS. */
  extensionsBeforeTls?: string[];
  /** Answer a command differently; return undefined for the default behaviour. */
  onCommand?: (command: string, conn: ScriptedConnection) => ScriptAction | undefined;
  /** Answer the end of a message (after `.` or BDAT LAST); default `250 2.0.0 Ok: queued as Qn`. */
  onMessage?: (message: Buffer, conn: ScriptedConnection) => ScriptAction | undefined;
}

export interface ScriptedServer {
  host: '127.0.0.1';
  port: number;
  connections: ScriptedConnection[];
  /** All messages received over all connections. */
  readonly messages: Buffer[];
  close(): Promise<void>;
}

const DEFAULT_EXT = [
  'PIPELINING',
  '8BITMIME',
  'SMTPUTF8',
  'ENHANCEDSTATUSCODES',
  'SIZE 10485760',
  'AUTH PLAIN LOGIN',
];

/** The extension lists most scripted tests advertise: PIPELINING with AUTH, and the same with CHUNKING. */
export const PIPELINED = ['PIPELINING', 'ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN'];
export const PIPELINED_CHUNKING = [...PIPELINED, 'CHUNKING'];

/**
 * For a test file: registers an `afterEach` that closes, newest first, every server started with `start` and
 * every client handed to `closes` during the test (so a client says QUIT before its server goes away).
 */
export function useScriptedServers() {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
  });
  return {
    async start(o?: ScriptedServerOptions): Promise<ScriptedServer> {
      const s = await startScriptedServer(o);
      open.push(s);
      return s;
    },
    closes<T extends { close(): Promise<void> }>(c: T): T {
      open.push(c);
      return c;
    },
  };
}

function ehloReply(ext: string[]): string {
  const lines = ['scripted.test hello', ...ext];
  return lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}\r\n`).join('');
}

export async function startScriptedServer(o: ScriptedServerOptions = {}): Promise<ScriptedServer> {
  const ext = o.extensions ?? DEFAULT_EXT;
  const before = o.extensionsBeforeTls ?? ['STARTTLS', ...ext.filter((e) => !e.startsWith('AUTH'))];
  const certs = TEST_CERTS[o.cert ?? 'localhost'];
  const secureContext = tls.createSecureContext({ key: certs.key, cert: certs.cert });
  const connections: ScriptedConnection[] = [];
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();

  function handle(raw: net.Socket): void {
    sockets.add(raw);
    let socket: net.Socket = raw;
    let buf = Buffer.alloc(0);
    let mode: 'cmd' | 'data' | 'bdat' | 'auth-login-user' | 'auth-login-pass' | 'xoauth-error' | 'upgrading' =
      'cmd';
    let bdatLeft = 0;
    let paused = false;
    let bdatLast = false;
    let chunks: Buffer[] = [];
    let wroteSinceTurn = true;
    /** In DATA mode with no body byte received yet: the client was waiting for our 354. */
    let dataFresh = false;
    let resolveClosed: () => void = () => {};
    const closed = new Promise<void>((r) => {
      resolveClosed = r;
    });
    raw.on('close', () => {
      sockets.delete(raw);
      resolveClosed();
    });
    raw.on('error', () => {});
    const conn: ScriptedConnection = {
      index: connections.length,
      commands: [],
      messages: [],
      received: [],
      tls: false,
      tlsHandshakes: 0,
      turns: 0,
      greeted: false,
      get roundTrips() {
        return 1 + this.tlsHandshakes + (this.greeted ? 1 : 0) + this.turns;
      },
      write: (s) => write(s),
      end: () => socket.end(),
      reset: () => raw.resetAndDestroy(),
      unref: () => raw.unref(),
      closed,
    };
    connections.push(conn);

    function write(s: string): void {
      if (socket.destroyed || socket.writableEnded) return;
      wroteSinceTurn = true;
      socket.write(Buffer.from(s, 'latin1'));
    }

    function act(a: ScriptAction | undefined, dflt: string): void {
      if (!a) {
        write(dflt);
        return;
      }
      if ('silent' in a) {
        paused = true; // a hung server answers nothing after this either
        return;
      }
      if ('reset' in a) {
        raw.resetAndDestroy();
        return;
      }
      if ('drip' in a) {
        // Later commands wait until the drip is over (replies stay in order).
        paused = true;
        let i = 0;
        const t = setInterval(() => {
          if (i >= a.drip.length || socket.destroyed) {
            clearInterval(t);
            timers.delete(t);
            paused = false;
            process();
            return;
          }
          write(a.drip[i++]!);
        }, a.everyMs);
        timers.add(t);
        return;
      }
      if ('close' in a && a.close && !('reply' in a && a.reply !== undefined)) {
        socket.end();
        return;
      }
      if ('reply' in a && a.reply !== undefined) write(a.reply);
      if ('upgrade' in a && a.upgrade) upgrade();
      if (a.close) socket.end();
    }

    function upgrade(): void {
      mode = 'upgrading';
      socket.removeListener('data', onData);
      const leftover = buf;
      buf = Buffer.alloc(0);
      const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
      secure.on('error', () => {});
      secure.once('secure', () => {
        conn.tls = true;
        conn.tlsHandshakes++;
        mode = 'cmd';
        wroteSinceTurn = true;
      });
      secure.on('data', onData);
      socket = secure;
      if (leftover.length > 0) {
        // Bytes the client sent before the handshake (pipelined after STARTTLS): record them; a real server
        // must not treat them as commands.
        conn.received.push(leftover);
        conn.commands.push(`<plaintext after STARTTLS: ${leftover.length} octets>`);
      }
    }

    function command(line: string): void {
      conn.commands.push(line);
      const upper = line.toUpperCase();
      const custom = o.onCommand?.(line, conn);
      if (custom) {
        act(custom, '');
        return;
      }
      if (mode === 'auth-login-user') {
        mode = 'auth-login-pass';
        write('334 UGFzc3dvcmQ6\r\n');
        return;
      }
      if (mode === 'auth-login-pass') {
        mode = 'cmd';
        write('235 2.7.0 Authentication successful\r\n');
        return;
      }
      if (mode === 'xoauth-error') {
        mode = 'cmd';
        write('535 5.7.8 Username and Password not accepted\r\n');
        return;
      }
      if (upper.startsWith('EHLO') || upper.startsWith('HELO')) {
        write(ehloReply(conn.tls || !before.length || o.implicitTls ? ext : before));
        return;
      }
      if (upper === 'STARTTLS') {
        act({ reply: '220 2.0.0 Ready to start TLS\r\n', upgrade: true }, '');
        return;
      }
      if (upper.startsWith('AUTH LOGIN')) {
        mode = 'auth-login-user';
        write('334 VXNlcm5hbWU6\r\n');
        return;
      }
      if (upper.startsWith('AUTH')) {
        write('235 2.7.0 Authentication successful\r\n');
        return;
      }
      if (upper.startsWith('MAIL')) {
        write('250 2.1.0 Sender OK\r\n');
        return;
      }
      if (upper.startsWith('RCPT')) {
        write('250 2.1.5 Recipient OK\r\n');
        return;
      }
      if (upper === 'DATA') {
        mode = 'data';
        dataFresh = true;
        chunks = [];
        write('354 End data with <CR><LF>.<CR><LF>\r\n');
        return;
      }
      if (upper.startsWith('BDAT')) {
        const m = /^BDAT (\d+)( LAST)?$/i.exec(line);
        bdatLeft = Number(m?.[1] ?? 0);
        bdatLast = !!m?.[2];
        mode = 'bdat';
        return;
      }
      if (upper === 'RSET' || upper === 'NOOP') {
        write('250 2.0.0 OK\r\n');
        return;
      }
      if (upper === 'QUIT') {
        write('221 2.0.0 Bye\r\n');
        socket.end();
        return;
      }
      write('502 5.5.2 Command not implemented\r\n');
    }

    function endOfMessage(message: Buffer): void {
      conn.messages.push(message);
      act(o.onMessage?.(message, conn), `250 2.0.0 Ok: queued as Q${conn.index}-${conn.messages.length}\r\n`);
    }

    function process(): void {
      for (;;) {
        if (mode === 'upgrading' || paused || socket.writableEnded || socket.destroyed) return;
        if (mode === 'bdat') {
          if (buf.length < bdatLeft) return;
          chunks.push(buf.subarray(0, bdatLeft));
          buf = buf.subarray(bdatLeft);
          mode = 'cmd';
          if (bdatLast) endOfMessage(Buffer.concat(chunks.splice(0)));
          else write(`250 2.0.0 ${bdatLeft} octets received\r\n`);
          continue;
        }
        if (mode === 'data') {
          const s = buf.toString('latin1');
          const end = s.startsWith('.\r\n') ? 0 : s.indexOf('\r\n.\r\n');
          if (end === -1) return;
          const body = end === 0 ? '' : s.slice(0, end + 2);
          buf = buf.subarray(end === 0 ? 3 : end + 5);
          mode = 'cmd';
          const unstuffed = body.replace(/^\./gm, '');
          endOfMessage(Buffer.from(unstuffed, 'latin1'));
          continue;
        }
        const i = buf.indexOf('\r\n');
        if (i === -1) return;
        const line = buf.subarray(0, i).toString('utf8');
        buf = buf.subarray(i + 2);
        command(line);
      }
    }

    function onData(chunk: Buffer): void {
      conn.received.push(chunk);
      const idle = buf.length === 0 && (mode === 'data' ? dataFresh : mode !== 'bdat');
      dataFresh = false;
      if (idle && wroteSinceTurn) {
        conn.turns++;
        wroteSinceTurn = false;
      }
      buf = Buffer.concat([buf, chunk]);
      process();
    }

    function start(): void {
      socket.on('data', onData);
      const greeting = typeof o.greeting === 'function' ? o.greeting(conn.index) : o.greeting;
      if (greeting !== null) {
        conn.greeted = true;
        write(greeting ?? '220 scripted.test ESMTP ready\r\n');
      }
      wroteSinceTurn = true;
    }

    if (o.implicitTls) {
      const secure = new tls.TLSSocket(raw, { isServer: true, secureContext });
      secure.on('error', () => {});
      socket = secure;
      secure.once('secure', () => {
        conn.tls = true;
        conn.tlsHandshakes++;
        start();
      });
    } else start();
  }

  const server = net.createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    connections,
    get messages() {
      return connections.flatMap((c) => c.messages);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearInterval(t);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
