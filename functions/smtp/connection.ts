/**
 * One SMTP connection: opens the socket, drives the `Session` state machine (writes each group in one write,
 * reads replies, upgrades TLS when told), counts round trips, keeps timings and the redacted transcript, and
 * enforces the deadline / abort signal / phase timeouts. Used by `client.ts`.
 */
import * as cmd from './command.ts';
import { abortError, asSmtpError, SmtpError } from './error.ts';
import { defaultPort, isLoopback } from './host.ts';
import { formatReply } from './reply.ts';
import { Session } from './session.ts';
import { upgradeToTls } from './starttls.ts';
import { endsData, type WrittenItem } from './transaction.ts';
import { connectTcp, type TcpOpening, Transport } from './transport.ts';
import type {
  ConnectionOptions,
  Deadline,
  Phase,
  PhaseTimeouts,
  Reply,
  Security,
  SessionStats,
  TlsInfo,
  TranscriptLine,
} from './types.ts';

export const DEFAULT_TIMEOUTS: Required<PhaseTimeouts> = {
  connect: 10_000,
  greeting: 10_000,
  reply: 10_000,
  data: 30_000,
};
/** Longest wait for the 221 after QUIT (it is not needed; a Lambda must not hang on it). */
export const QUIT_WAIT_MS = 500;

export interface ResolvedOptions extends ConnectionOptions {
  host: string;
  port: number;
  security: Security;
  clientName: string;
  timeouts: Required<PhaseTimeouts>;
  loopback: boolean;
}

/** Defaults + the fail-closed checks that need no network. Throws `SmtpError` (phase connect). */
export function resolveOptions(o: ConnectionOptions): ResolvedOptions {
  const security = o.security ?? 'starttls';
  if (!['starttls', 'tls', 'none'].includes(security)) {
    throw new SmtpError(`unknown security mode ${String(security)}`, { phase: 'connect', kind: 'usage' });
  }
  const loopback = isLoopback(o.host);
  if (security === 'none' && !loopback && !o.allowPlaintext) {
    throw new SmtpError(
      `refusing a clear-text SMTP connection to ${o.host} (security 'none' is for loopback hosts; set allowPlaintext to override)`,
      { phase: 'connect', kind: 'security' },
    );
  }
  const clientName = ehloName(o, loopback);
  cmd.ehlo(clientName); // validates the EHLO name through the choke point (throws SmtpError)
  return {
    ...o,
    security,
    port: o.port ?? defaultPort(security),
    clientName,
    timeouts: { ...DEFAULT_TIMEOUTS, ...o.timeouts },
    loopback,
  };
}

/**
 * Our EHLO name (RFC 5321 §4.1.4: the client's domain). `localhost` only to a loopback server: an MX that sees
 * `EHLO localhost` scores the mail as spam (SpamAssassin HELO_LOCALHOST), so to any other server the name must
 * be given — the sender's domain is the usual choice (the SMTP secret and the CLI default to it).
 */
function ehloName(o: ConnectionOptions, loopback: boolean): string {
  if (loopback) return o.clientName ?? 'localhost';
  const name = o.clientName;
  if (name === undefined) {
    throw new SmtpError(
      `no EHLO name for ${o.host}: set clientName to the sending domain (localhost is only for a loopback server)`,
      { phase: 'connect', kind: 'security' },
    );
  }
  if (/^(?:.*\.)?localhost\.?$/i.test(name)) {
    throw new SmtpError(
      `refusing EHLO ${name} to ${o.host}: a server that is not on this host takes it for spam (set clientName to the sending domain)`,
      { phase: 'connect', kind: 'security' },
    );
  }
  return name;
}

/** One deadline + abort signal for a whole operation. */
export class Budget {
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  constructor(d: Deadline = {}) {
    this.deadline = d.deadline ?? Number.POSITIVE_INFINITY;
    this.signal = d.signal;
  }
  remaining(): number {
    return this.deadline - Date.now();
  }
  /** Timeout for a wait: the phase limit, or what is left of the deadline when that is shorter. */
  limit(phaseMs: number, what: string): { ms: number; message: string } {
    const left = this.remaining();
    if (left < phaseMs)
      return { ms: Math.max(0, left), message: `deadline exceeded while waiting for ${what}` };
    return { ms: phaseMs, message: `no ${what} within ${phaseMs} ms` };
  }
  check(phase: Phase): void {
    if (this.signal?.aborted) throw abortError(phase, this.signal);
    if (this.remaining() <= 0) {
      throw new SmtpError(`deadline exceeded (${phase})`, { phase, kind: 'timeout' });
    }
  }
}

export interface OperationStats extends SessionStats {
  transcript?: TranscriptLine[];
}

export function newStats(transcript: boolean): OperationStats {
  const s: OperationStats = { roundTrips: 0, timings: {} };
  if (transcript) s.transcript = [];
  return s;
}

export class Connection {
  readonly session: Session;
  tls?: TlsInfo;
  /** Where the current operation's counters go (swapped per operation on a kept connection). */
  stats: OperationStats;
  idleSince = 0;
  private readonly startedAt = Date.now();

  private constructor(
    readonly options: ResolvedOptions,
    readonly transport: Transport,
    stats: OperationStats,
  ) {
    this.stats = stats;
    this.session = new Session({
      security: options.security,
      clientName: options.clientName,
      ...(options.auth ? { auth: options.auth } : {}),
      plaintextAuthAllowed: options.loopback && options.allowPlaintextAuth === true,
      pipelining: options.pipelining !== false,
      chunking: options.chunking !== false,
      tls: options.security === 'tls',
    });
  }

  /**
   * TCP connect, or take the connection `opening` started ahead to this server (+ TLS handshake for implicit
   * TLS). The greeting is read by `run()`.
   */
  static async open(
    options: ResolvedOptions,
    budget: Budget,
    stats: OperationStats,
    opening?: TcpOpening,
  ): Promise<Connection> {
    budget.check('connect');
    const t0 = Date.now();
    const lim = budget.limit(options.timeouts.connect, 'TCP connection');
    const socket = opening
      ? await opening.take()
      : await connectTcp({
          host: options.host,
          port: options.port,
          timeoutMs: lim.ms,
          timeoutMessage: lim.message,
          signal: budget.signal,
        });
    stats.roundTrips++;
    add(stats, 'connect', Date.now() - t0);
    const transport = new Transport(socket);
    const conn = new Connection(options, transport, stats);
    conn.note(`connected to ${options.host}:${options.port}${opening ? ' (opened ahead)' : ''}`);
    if (options.security === 'tls') {
      transport.pauseReading();
      await conn.upgrade(budget, 'connect');
    }
    return conn;
  }

  private async upgrade(budget: Budget, phase: Phase): Promise<void> {
    const t0 = Date.now();
    const lim = budget.limit(this.options.timeouts.connect, 'TLS handshake');
    const p = upgradeToTls(this.transport, {
      host: this.options.host,
      ...(this.options.servername ? { servername: this.options.servername } : {}),
      ...(this.options.ca !== undefined ? { ca: this.options.ca } : {}),
      timeoutMs: lim.ms,
      timeoutMessage: lim.message,
      phase,
      signal: budget.signal,
    });
    try {
      this.tls = await p;
    } catch (e) {
      this.transport.destroy();
      throw e;
    }
    this.stats.roundTrips++;
    add(this.stats, 'tls', Date.now() - t0);
    this.note(`TLS established: ${this.tls.protocol} ${this.tls.cipher}`);
  }

  private log(dir: 'C' | 'S' | 'I', line: string): void {
    this.stats.transcript?.push({ t: Date.now() - this.startedAt, dir, line });
  }
  note(line: string): void {
    this.log('I', line);
  }

  /**
   * Drive the session until it is idle (kept sessions) or done. Never throws: a failure is recorded on the
   * session (`session.abort`) and in each transaction's error, and the socket is destroyed.
   */
  async run(budget: Budget): Promise<void> {
    const onAbort = () => this.transport.fail(abortError(this.session.phase, budget.signal));
    budget.signal?.addEventListener('abort', onAbort);
    try {
      if (budget.signal?.aborted) throw abortError(this.session.phase, budget.signal);
      for (;;) {
        const a = this.session.next();
        if (a.type === 'idle') return;
        if (a.type === 'done') {
          this.transport.destroy();
          return;
        }
        if (a.type === 'write') {
          try {
            await beforeDataEnd(a.items, budget, this.options.timeouts.reply);
            budget.check(a.items[0]!.phase);
            this.transport.write(
              a.items.map((i) => i.bytes),
              a.items[0]!.phase,
            );
          } catch (e) {
            this.session.notWritten(a.items); // nothing of this group left us: no message end was written
            throw e;
          }
          for (const it of a.items) for (const l of it.log) this.log('C', l);
          if (a.items.some((i) => i.kind !== 'quit')) this.stats.roundTrips++;
          continue;
        }
        if (a.type === 'starttls') {
          await this.upgrade(budget, 'starttls');
          this.session.tlsEstablished();
          continue;
        }
        const item = a.item;
        if (item.kind === 'quit') {
          await this.readQuit(budget);
          continue;
        }
        if (item.kind === 'greeting') this.stats.roundTrips++;
        const phaseMs =
          item.kind === 'greeting'
            ? this.options.timeouts.greeting
            : endsData(item)
              ? this.options.timeouts.data // the reply to the final dot / BDAT LAST: exactly `timeouts.data`
              : this.session.awaitingDataEnd
                ? Math.max(this.options.timeouts.data, this.options.timeouts.reply)
                : this.options.timeouts.reply;
        const lim = budget.limit(
          phaseMs,
          item.kind === 'greeting' ? 'greeting' : `reply to ${item.command || item.kind}`,
        );
        const t0 = Date.now();
        let reply: Reply;
        try {
          reply = await this.transport.readReply({
            timeoutMs: lim.ms,
            timeoutMessage: lim.message,
            phase: item.phase,
            ...(item.kind === 'starttls' ? { detachAfter: (r: Reply) => r.code === 220 } : {}),
          });
        } finally {
          add(this.stats, item.phase, Date.now() - t0);
        }
        for (const l of formatReply(reply).split('\n')) this.log('S', l);
        this.session.onReply(reply);
      }
    } catch (e) {
      const err = asSmtpError(e, this.session.phase);
      this.note(`connection failed: ${err.message}`);
      this.session.abort(err);
      this.transport.destroy();
    } finally {
      budget.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async readQuit(budget: Budget): Promise<void> {
    try {
      const ms = Math.max(0, Math.min(QUIT_WAIT_MS, budget.remaining()));
      const reply = await this.transport.readReply({ timeoutMs: ms, phase: 'quit' });
      for (const l of formatReply(reply).split('\n')) this.log('S', l);
      this.session.onReply(reply);
    } catch {
      this.session.abort(new SmtpError('no reply to QUIT', { phase: 'quit', kind: 'timeout' }));
    }
    this.transport.destroy();
  }

  /** Say QUIT (pipelined with nothing), wait briefly for 221, destroy. Never throws. */
  async quit(budget: Budget = new Budget({ deadline: Date.now() + QUIT_WAIT_MS })): Promise<void> {
    if (this.session.usable && this.transport.alive) {
      this.session.requestQuit();
      await this.run(budget);
    }
    this.transport.destroy();
  }
}

/**
 * Await each `beforeDataEnd` hook of the messages whose last byte is in this write (within the deadline). A hook
 * that rejects, or does not answer in time, ends the session with that message `not-sent`.
 */
async function beforeDataEnd(items: WrittenItem[], budget: Budget, phaseMs: number): Promise<void> {
  const hooks = items.flatMap((i) =>
    endsData(i) && i.tx.message.beforeDataEnd ? [i.tx.message.beforeDataEnd] : [],
  );
  if (hooks.length === 0) return;
  const lim = budget.limit(phaseMs, 'the hook before the end of data');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SmtpError(lim.message, { phase: 'data', kind: 'timeout' })), lim.ms);
  });
  try {
    await Promise.race([Promise.all(hooks.map((h) => h())), timeout]);
  } catch (e) {
    if (e instanceof SmtpError) throw e;
    throw new SmtpError(`the message was held before its end of data: ${(e as Error)?.message ?? e}`, {
      phase: 'data',
      kind: 'aborted',
      delivery: 'not-sent',
      transient: false,
      cause: e,
    });
  } finally {
    clearTimeout(timer);
  }
}

function add(stats: SessionStats, phase: Phase | 'tls', ms: number): void {
  stats.timings[phase] = (stats.timings[phase] ?? 0) + ms;
}
