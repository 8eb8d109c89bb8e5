/**
 * Public API: `sendMail`, `sendBatch`, `verify` (one connection each, QUIT at the end) and `SmtpClient`
 * (warm-session reuse across Lambda invocations).
 */
import * as cmd from './command.ts';
import {
  Budget,
  Connection,
  newStats,
  type OperationStats,
  type ResolvedOptions,
  resolveOptions,
} from './connection.ts';
import { asSmtpError, SmtpError } from './error.ts';
import type { Transaction } from './transaction.ts';
import type { TcpOpening } from './transport.ts';
import type {
  BatchItemResult,
  Capabilities,
  ConnectionOptions,
  Deadline,
  OutgoingMessage,
  SessionStats,
  TlsInfo,
  TransactionResult,
  TranscriptLine,
} from './types.ts';

export type SendOutcome = TransactionResult & {
  roundTrips: number;
  /** The message went over a session kept from an earlier send (SmtpClient). */
  reused: boolean;
  transcript?: TranscriptLine[];
  tls?: TlsInfo;
  capabilities: Capabilities;
  timings: SessionStats['timings'];
};

export type BatchOutcome = {
  results: BatchItemResult[];
  roundTrips: number;
  reused: boolean;
  transcript?: TranscriptLine[];
};

export type VerifyResult = {
  capabilities: Capabilities;
  tls?: TlsInfo;
  authMechanism?: string;
  roundTrips: number;
  timings: SessionStats['timings'];
  greeting: string;
  transcript?: TranscriptLine[];
};

export interface SmtpClientOptions extends ConnectionOptions {
  /** Keep the authenticated session open between sends. Default true. */
  reuse?: boolean;
  /** Close a kept session idle for longer than this. Default 60 000 ms. */
  idleTimeoutMs?: number;
}

/**
 * Check the envelope through the command choke point before connecting: CR/LF/NUL or a malformed address
 * fails here, before any byte is written.
 */
function precheck(msg: OutgoingMessage): void {
  if (!msg?.envelope || !Array.isArray(msg.envelope.to) || !(msg.content instanceof Uint8Array)) {
    throw new SmtpError('message needs envelope.from, envelope.to[] and content (Uint8Array)', {
      phase: 'mail',
      kind: 'usage',
    });
  }
  if (msg.envelope.to.length === 0) {
    throw new SmtpError('the envelope has no recipients', { phase: 'rcpt', kind: 'usage' });
  }
  cmd.mail(msg.envelope.from);
  for (const to of msg.envelope.to) cmd.rcpt(to);
}

/**
 * Give an error that leaves the public API its operation's context: the round trips so far and, with
 * `transcript: true`, the redacted transcript (the CLI prints it on failure, the Lambda logs the round trips).
 * Anything that is not an `SmtpError` (e.g. Node's RangeError for a bad port) becomes a `usage` error.
 */
function withContext(e: unknown, stats: OperationStats): SmtpError {
  const err = asSmtpError(e, 'connect');
  return err.with({
    roundTrips: stats.roundTrips,
    ...(stats.transcript ? { transcript: stats.transcript } : {}),
  });
}

const notSent = () => new SmtpError('message was not sent', { phase: 'mail', kind: 'network' });

/** The message's result, or the error that ended it (the session's own error when it never started). */
function resultOf(tx: Transaction, conn: Connection): TransactionResult {
  if (tx.result) return tx.result;
  throw tx.error ?? conn.session.fatal ?? notSent();
}

/**
 * Open a connection and run it with `msgs`; with `quit`, QUIT at the end and close. Failures land in the
 * transactions (and in `session.fatal`).
 */
async function runSession(
  options: ResolvedOptions,
  budget: Budget,
  stats: OperationStats,
  msgs: OutgoingMessage[],
  quit: boolean,
): Promise<{ conn: Connection; txs: Transaction[] }> {
  const conn = await Connection.open(options, budget, stats);
  const txs = msgs.map((m) => conn.session.enqueue(m));
  if (quit) conn.session.requestQuit();
  await conn.run(budget);
  if (quit) conn.transport.destroy();
  return { conn, txs };
}

/**
 * A batch never throws: messages that fail the precheck get their error at once, the others are given to `run`
 * (one session); when `run` fails as a whole (connect, bad options), every one of them gets that error. Every
 * error carries the operation's context.
 */
async function runBatch(
  msgs: OutgoingMessage[],
  stats: OperationStats,
  run: (msgs: OutgoingMessage[]) => Promise<{ conn: Connection; txs: Transaction[] }>,
): Promise<BatchItemResult[]> {
  const results: BatchItemResult[] = new Array(msgs.length);
  const toSend: OutgoingMessage[] = [];
  const index: number[] = [];
  msgs.forEach((m, i) => {
    try {
      precheck(m);
      toSend.push(m);
      index.push(i);
    } catch (e) {
      results[i] = { ok: false, error: e as SmtpError };
    }
  });
  if (toSend.length > 0) {
    try {
      const { conn, txs } = await run(toSend);
      txs.forEach((tx, k) => {
        results[index[k]!] = tx.result
          ? { ok: true, ...tx.result }
          : { ok: false, error: tx.error ?? conn.session.fatal ?? notSent() };
      });
    } catch (e) {
      const error = asSmtpError(e, 'connect');
      for (const i of index) results[i] = { ok: false, error };
    }
  }
  return results.map((r) => (r.ok ? r : { ok: false, error: withContext(r.error, stats) }));
}

function batchOutcome(results: BatchItemResult[], stats: OperationStats, reused: boolean): BatchOutcome {
  const out: BatchOutcome = { results, roundTrips: stats.roundTrips, reused };
  if (stats.transcript) out.transcript = stats.transcript;
  return out;
}

function sendOutcome(
  result: TransactionResult,
  conn: Connection,
  stats: OperationStats,
  reused: boolean,
): SendOutcome {
  const out: SendOutcome = {
    ...result,
    roundTrips: stats.roundTrips,
    reused,
    capabilities: conn.session.capabilities!,
    timings: stats.timings,
  };
  if (conn.tls) out.tls = conn.tls;
  if (stats.transcript) out.transcript = stats.transcript;
  return out;
}

/**
 * Connect, EHLO, STARTTLS, AUTH, send one message, QUIT. Resolves when the server accepted the message for at
 * least one recipient (others are listed in `rejected`); otherwise throws `SmtpError` with phase, delivery,
 * `roundTrips` and (with `transcript: true`) the transcript so far.
 */
export async function sendMail(
  opts: ConnectionOptions & Deadline,
  msg: OutgoingMessage,
): Promise<SendOutcome> {
  const stats = newStats(!!opts?.transcript);
  try {
    const options = resolveOptions(opts);
    precheck(msg);
    const { conn, txs } = await runSession(options, new Budget(opts), stats, [msg], true);
    return sendOutcome(resultOf(txs[0]!, conn), conn, stats, false);
  } catch (e) {
    throw withContext(e, stats);
  }
}

/**
 * Send several messages over ONE session (pipelined across transactions when the server allows). Never throws:
 * each message gets its own result. A failed transaction is followed by RSET. If the connection dies mid-batch,
 * the messages not yet started are `not-sent` (there is no reconnect inside `sendBatch`: the caller's retry policy
 * decides, and `unknown` items must not be resent blindly). Bad options or a failed connect fail every item.
 */
export async function sendBatch(
  opts: ConnectionOptions & Deadline,
  msgs: OutgoingMessage[],
): Promise<BatchOutcome> {
  const stats = newStats(!!opts?.transcript);
  const results = await runBatch(msgs, stats, (toSend) =>
    runSession(resolveOptions(opts), new Budget(opts), stats, toSend, true),
  );
  return batchOutcome(results, stats, false);
}

/** Connect, EHLO, STARTTLS, AUTH (when credentials are given), QUIT. Throws `SmtpError` on any failure. */
export async function verify(opts: ConnectionOptions & Deadline): Promise<VerifyResult> {
  const stats = newStats(!!opts?.transcript);
  try {
    const { conn } = await runSession(resolveOptions(opts), new Budget(opts), stats, [], true);
    const s = conn.session;
    if (s.fatal && s.fatal.phase !== 'quit') throw s.fatal;
    if (!s.capabilities) throw new SmtpError('session ended before EHLO', { phase: 'ehlo', kind: 'network' });
    const out: VerifyResult = {
      capabilities: s.capabilities,
      roundTrips: stats.roundTrips,
      timings: stats.timings,
      greeting: s.greeting?.text ?? '',
    };
    if (conn.tls) out.tls = conn.tls;
    if (s.authMechanism) out.authMechanism = s.authMechanism;
    if (stats.transcript) out.transcript = stats.transcript;
    return out;
  } catch (e) {
    throw withContext(e, stats);
  }
}

/** The round trips, timings and transcript of `connect()` belong to the send that uses its session. */
function countOpening(stats: OperationStats, opening: OperationStats): void {
  stats.roundTrips += opening.roundTrips;
  for (const [phase, ms] of Object.entries(opening.timings) as Array<
    [keyof OperationStats['timings'], number]
  >) {
    stats.timings[phase] = (stats.timings[phase] ?? 0) + ms;
  }
  if (stats.transcript && opening.transcript) stats.transcript.unshift(...opening.transcript);
}

/** A kept session died before this message was accepted in any part: resending is safe. */
function staleSessionFailure(tx: Transaction): boolean {
  const e = tx.error;
  if (!e || tx.result || e.delivery !== 'not-sent') return false;
  if (e.kind === 'network' || e.kind === 'protocol' || e.kind === 'timeout') return true;
  return e.code === 421 || e.phase === 'rset';
}

/**
 * Warm-session reuse for Lambda: keep one instance at module scope. After a send the authenticated session stays
 * open (socket unref'd: it never keeps the event loop alive, the function can freeze) for `idleTimeoutMs`.
 * The next send first processes whatever the server said while idle (421, EOF, reset → the session is dropped),
 * then pipelines `RSET` with the new transaction. A kept session found dead before any part of the new message was
 * accepted is replaced by a new connection and the message is sent once more; a failure after the final `.` / BDAT
 * LAST was written is `delivery: 'unknown'` and is never resent. Calls are serialised.
 */
export class SmtpClient {
  private options: ResolvedOptions;
  private readonly reuse: boolean;
  private readonly idleTimeoutMs: number;
  private conn?: Connection;
  /** The session `connect()` opened, until a send takes it (its round trips and timings count in that send). */
  private opened?: { conn: Connection; stats: OperationStats };
  private idleTimer?: NodeJS.Timeout;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(opts: SmtpClientOptions) {
    const { reuse, idleTimeoutMs, ...rest } = opts;
    this.reuse = reuse !== false;
    this.idleTimeoutMs = idleTimeoutMs ?? 60_000;
    this.options = resolveOptions(rest); // fails early on bad options
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  send(msg: OutgoingMessage, d: Deadline = {}): Promise<SendOutcome> {
    return this.exclusive(async () => {
      const stats = newStats(!!this.options.transcript);
      try {
        precheck(msg);
        const { txs, conn, reused } = await this.transact([msg], d, stats);
        return sendOutcome(resultOf(txs[0]!, conn), conn, stats, reused);
      } catch (e) {
        throw withContext(e, stats);
      }
    });
  }

  sendBatch(msgs: OutgoingMessage[], d: Deadline = {}): Promise<BatchOutcome> {
    return this.exclusive(async () => {
      const stats = newStats(!!this.options.transcript);
      let reused = false;
      const results = await runBatch(msgs, stats, async (toSend) => {
        const r = await this.transact(toSend, d, stats);
        reused = r.reused;
        return r;
      });
      return batchOutcome(results, stats, reused);
    });
  }

  /**
   * Open the kept session ahead of the first send — TCP, greeting, EHLO, STARTTLS (or implicit TLS), EHLO — and
   * stop there: no AUTH, no transaction. For a cold start that knows the server from its configuration while the
   * secret with the credentials is still being fetched: `useCredentials` supplies them, and the first send
   * pipelines AUTH with its transaction (AUTH only after TLS, only with a mechanism the server offers, as always).
   * Never throws: after a failure there is no kept session and the first send connects as usual. Only with
   * `reuse` (otherwise nothing would be kept). `opening`: the TCP connection a cold start opened ahead, used when
   * it goes to this client's server, else closed unused.
   */
  connect(d: Deadline = {}, opening?: TcpOpening): Promise<void> {
    return this.exclusive(async () => {
      const o = this.options;
      const wanted = this.reuse && !this.conn;
      const usable =
        wanted && opening?.host.toLowerCase() === o.host.toLowerCase() && opening.port === o.port;
      if (!usable) opening?.close();
      if (!wanted) return;
      const stats = newStats(!!o.transcript);
      try {
        const budget = new Budget(d);
        const conn = await Connection.open(o, budget, stats, usable ? opening : undefined);
        await conn.run(budget);
        this.keepOrClose(conn);
        if (this.conn === conn) this.opened = { conn, stats };
      } catch {
        // nothing kept: the first send opens its own connection
      }
    });
  }

  /** Credentials for a client made without them (after or during `connect`); the next send authenticates. */
  useCredentials(auth: NonNullable<ConnectionOptions['auth']>): void {
    if (this.options.auth) {
      throw new SmtpError('this client already has credentials', { phase: 'auth', kind: 'usage' });
    }
    this.options = { ...this.options, auth };
  }

  /** QUIT (waiting at most briefly for the 221) and destroy the kept session, if any. */
  close(): Promise<void> {
    return this.exclusive(async () => {
      this.clearIdle();
      const conn = this.conn;
      this.conn = undefined;
      this.opened = undefined;
      if (conn) {
        conn.transport.ref();
        await conn.quit();
      }
    });
  }

  /** Run `msgs` on the kept session or a new one; retry once on a new connection when a kept one was stale. */
  private async transact(
    msgs: OutgoingMessage[],
    d: Deadline,
    stats: OperationStats,
  ): Promise<{ txs: Transaction[]; conn: Connection; reused: boolean }> {
    const options = this.options;
    const budget = new Budget(d);
    const quit = !this.reuse;
    let conn = await this.takeWarm();
    const opened = conn && this.opened?.conn === conn ? this.opened : undefined;
    this.opened = undefined;
    let reused = !!conn && !opened;
    let txs: Transaction[];
    if (conn) {
      conn.stats = stats;
      if (opened) countOpening(stats, opened.stats);
      // A session opened before the credentials were known gets them now: its next group starts with AUTH.
      if (this.options.auth && !conn.session.hasCredentials)
        conn.session.provideCredentials(this.options.auth);
      conn.note(opened ? 'using the session opened ahead (connect)' : 'reusing the kept session');
      conn.session.prune();
      if (!opened) conn.session.markReused();
      txs = msgs.map((m) => conn!.session.enqueue(m));
      if (quit) conn.session.requestQuit();
      await conn.run(budget);
      const stale = txs.filter(staleSessionFailure);
      if (stale.length > 0 && budget.remaining() > 0 && !budget.signal?.aborted) {
        conn.note('kept session was dead before the message was accepted; reconnecting');
        conn.transport.destroy();
        const fresh = await runSession(
          options,
          budget,
          stats,
          stale.map((t) => t.message),
          quit,
        );
        conn = fresh.conn;
        reused = false;
        const replaced = new Map(stale.map((t, k) => [t, fresh.txs[k]!]));
        txs = txs.map((t) => replaced.get(t) ?? t);
      }
    } else {
      ({ conn, txs } = await runSession(options, budget, stats, msgs, quit));
    }
    this.keepOrClose(conn);
    return { txs, conn, reused };
  }

  private keepOrClose(conn: Connection): void {
    if (this.reuse && conn.session.usable && conn.transport.alive) {
      this.conn = conn;
      conn.idleSince = Date.now();
      // What happens while it idles (the idle QUIT) belongs to no caller's outcome or error.
      conn.stats = newStats(false);
      conn.transport.unref();
      this.clearIdle();
      this.idleTimer = setTimeout(() => {
        if (this.conn !== conn) return;
        void this.close();
      }, this.idleTimeoutMs);
      this.idleTimer.unref();
      return;
    }
    if (this.conn === conn) this.conn = undefined;
    conn.transport.destroy();
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** The kept session if it is still good, after letting pending socket events (421, EOF, RST) be processed. */
  private async takeWarm(): Promise<Connection | undefined> {
    const conn = this.conn;
    if (!conn) return undefined;
    this.conn = undefined;
    this.clearIdle();
    await new Promise<void>((r) => setImmediate(r));
    const expired = Date.now() - conn.idleSince > this.idleTimeoutMs;
    if (!conn.transport.alive || conn.transport.pendingInput || !conn.session.usable || expired) {
      conn.transport.destroy();
      return undefined;
    }
    conn.transport.ref();
    return conn;
  }
}
