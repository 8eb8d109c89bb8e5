/**
 * The byte pipe: a `node:net` socket (later maybe wrapped by `node:tls`, see `starttls.ts`), reads fed to the
 * `ReplyParser`, writes passed through, every wait bounded by a timeout. Knows nothing about SMTP semantics.
 *
 * Failures (EOF, reset, parse errors) are remembered and surface on the next `readReply()`; a reply that
 * arrives while nobody waits is queued (the owner checks `pendingInput` before reusing an idle session).
 */
import net from 'node:net';
import type tls from 'node:tls';
import { abortError, SmtpError, type SmtpErrorKind } from './error.ts';
import { ReplyParser, ReplyProtocolError } from './reply.ts';
import type { Phase, Reply } from './types.ts';

export interface ReadOptions {
  timeoutMs: number;
  phase: Phase;
  /** Message for the timeout error (e.g. "deadline exceeded"). */
  timeoutMessage?: string;
  /**
   * Stop reading from the socket right after this reply when it matches (the 220 to STARTTLS): anything already
   * received beyond it is an injection attempt and fails the read.
   */
  detachAfter?: (reply: Reply) => boolean;
}

interface Failure {
  kind: SmtpErrorKind;
  message: string;
  cause?: unknown;
}

interface Waiter {
  resolve: (r: Reply) => void;
  reject: (e: SmtpError) => void;
  opts: ReadOptions;
  timer: NodeJS.Timeout;
}

export class Transport {
  socket: net.Socket | tls.TLSSocket;
  /** The TCP socket under any TLS layer. */
  readonly raw: net.Socket;
  private parser = new ReplyParser();
  private replies: Reply[] = [];
  private waiter?: Waiter;
  private failure?: Failure;
  private readonly onData = (chunk: Buffer) => this.receive(chunk);
  private readonly onEnd = () =>
    this.setFailure({ kind: 'network', message: 'connection closed by the server' });
  private readonly onError = (e: Error) =>
    this.setFailure({ kind: 'network', message: `connection error: ${e.message}`, cause: e });

  constructor(socket: net.Socket) {
    this.socket = socket;
    this.raw = socket;
    this.attach(socket);
  }

  private attach(s: net.Socket): void {
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('close', this.onEnd);
    s.on('error', this.onError);
  }

  private detach(s: net.Socket): void {
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('close', this.onEnd);
    s.off('error', this.onError);
  }

  /** Replace the socket by its TLS wrapper (STARTTLS / implicit TLS). The parser starts fresh. */
  adopt(secure: tls.TLSSocket): void {
    this.detach(this.socket);
    this.socket = secure;
    this.parser = new ReplyParser();
    this.replies = [];
    this.attach(secure);
  }

  /** Stop reading without closing (before handing the socket to TLS). */
  pauseReading(): void {
    this.detach(this.socket);
    this.socket.pause();
    // Keep noticing failures while TLS is being set up.
    this.socket.on('error', () => {});
  }

  /** Octets or replies received and not consumed (an idle server talked, or bytes were injected). */
  get pendingInput(): boolean {
    return this.replies.length > 0 || this.parser.buffered > 0;
  }

  get alive(): boolean {
    return !this.failure && !this.socket.destroyed && !this.raw.destroyed;
  }

  private receive(chunk: Buffer): void {
    try {
      const replies = this.parser.push(chunk);
      this.replies.push(...replies);
    } catch (e) {
      // The replies before the bad line were said: they are answered first, then the failure.
      if (e instanceof ReplyProtocolError) this.replies.push(...e.before);
      const message = e instanceof ReplyProtocolError ? e.message : `bad reply: ${String(e)}`;
      this.setFailure({ kind: 'protocol', message, cause: e });
      return;
    }
    this.deliver();
  }

  private deliver(): void {
    const w = this.waiter;
    if (!w || this.replies.length === 0) return;
    const reply = this.replies.shift()!;
    this.waiter = undefined;
    clearTimeout(w.timer);
    const injected = this.checkDetach(reply, w.opts);
    if (injected) w.reject(injected);
    else w.resolve(reply);
  }

  private checkDetach(reply: Reply, opts: ReadOptions): SmtpError | undefined {
    if (!opts.detachAfter?.(reply)) return undefined;
    this.pauseReading();
    if (!this.pendingInput) return undefined;
    this.replies = [];
    this.parser = new ReplyParser();
    this.failure = { kind: 'protocol', message: 'STARTTLS injection' };
    return new SmtpError(
      'bytes received after the 220 to STARTTLS and before the TLS handshake (injection attempt)',
      {
        phase: 'starttls',
        kind: 'protocol',
      },
    );
  }

  private setFailure(f: Failure): void {
    if (this.failure) return;
    this.failure = f;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      // Replies that made it before the failure still count.
      if (this.replies.length > 0) {
        w.resolve(this.replies.shift()!);
        return;
      }
      w.reject(this.toError(f, w.opts.phase));
    }
  }

  private toError(f: Failure, phase: Phase): SmtpError {
    return new SmtpError(f.message, { phase, kind: f.kind, cause: f.cause });
  }

  /** Fail the transport from outside (abort, deadline); pending reads reject with `error`. */
  fail(error: SmtpError): void {
    if (!this.failure) this.failure = { kind: error.kind, message: error.message, cause: error };
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(error);
    }
    this.destroy();
  }

  readReply(opts: ReadOptions): Promise<Reply> {
    if (this.waiter) return Promise.reject(new Error('concurrent readReply'));
    const queued = this.replies.shift();
    if (queued) {
      const injected = this.checkDetach(queued, opts);
      return injected ? Promise.reject(injected) : Promise.resolve(queued);
    }
    if (this.failure) return Promise.reject(this.toError(this.failure, opts.phase));
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          if (this.waiter?.timer !== timer) return;
          this.waiter = undefined;
          const err = new SmtpError(opts.timeoutMessage ?? `no reply within ${opts.timeoutMs} ms`, {
            phase: opts.phase,
            kind: 'timeout',
          });
          reject(err);
        },
        Math.max(0, opts.timeoutMs),
      );
      this.waiter = { resolve, reject, opts, timer };
    });
  }

  /**
   * Write a group as one write (corked: small commands and a large body leave together, without copying them into
   * one buffer). Throws when the connection is already known to be gone (nothing was written then).
   */
  write(parts: Uint8Array[], phase: Phase): void {
    if (this.failure) throw this.toError(this.failure, phase);
    this.socket.cork();
    for (const p of parts) if (p.length > 0) this.socket.write(p);
    this.socket.uncork();
  }

  /** Keep / stop keeping the event loop alive (idle kept sessions are unref'd). */
  ref(): void {
    this.raw.ref();
    this.socket.ref();
  }
  unref(): void {
    this.raw.unref();
    this.socket.unref();
  }

  destroy(): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(this.toError(this.failure ?? { kind: 'network', message: 'connection closed' }, w.opts.phase));
    }
    if (!this.failure) this.failure = { kind: 'network', message: 'connection closed by the client' };
    this.socket.destroy();
    this.raw.destroy();
  }
}

export interface ConnectOptions {
  host: string;
  port: number;
  timeoutMs: number;
  timeoutMessage?: string;
  /** Aborting destroys the half-open socket at once (no timer or socket outlives the caller's abort). */
  signal?: AbortSignal | undefined;
}

/** Open a TCP connection within `timeoutMs`, unless `signal` aborts first. */
export function connectTcp(opts: ConnectOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.host, port: opts.port });
    socket.setNoDelay(true);
    const fail = (err: SmtpError) => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () =>
        fail(
          new SmtpError(opts.timeoutMessage ?? `TCP connect timed out after ${opts.timeoutMs} ms`, {
            phase: 'connect',
            kind: 'timeout',
          }),
        ),
      Math.max(0, opts.timeoutMs),
    );
    const onError = (e: Error) =>
      fail(
        new SmtpError(`cannot connect to ${opts.host}:${opts.port}: ${e.message}`, {
          phase: 'connect',
          kind: 'network',
          cause: e,
        }),
      );
    const onAbort = () => fail(abortError('connect', opts.signal));
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    function cleanup() {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      opts.signal?.removeEventListener('abort', onAbort);
    }
    socket.once('error', onError);
    socket.once('connect', onConnect);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A TCP connection opened before the session that will use it: a cold start opens it first thing, while the rest of
 * the code is still loading. What the server sends meanwhile (its greeting) stays buffered in the socket, unread; an
 * error meanwhile is kept, never thrown (nobody reads yet). `take()` hands the socket to one session, once.
 */
export class TcpOpening {
  readonly host: string;
  readonly port: number;
  readonly #socket: Promise<net.Socket>;
  #failure: Error | undefined;
  #taken = false;
  readonly #onError = (e: Error) => {
    this.#failure ??= e;
  };

  constructor(opts: ConnectOptions) {
    this.host = opts.host;
    this.port = opts.port;
    this.#socket = connectTcp(opts).then((s) => s.on('error', this.#onError));
    this.#socket.catch(() => {}); // take() reports it; no unhandled rejection when nobody takes it
  }

  /** The connected socket, or the connect failure / a failure while it waited (phase `connect`). Once. */
  async take(): Promise<net.Socket> {
    if (this.#taken) {
      throw new SmtpError('this TCP connection was already taken', { phase: 'connect', kind: 'usage' });
    }
    this.#taken = true;
    const socket = await this.#socket;
    socket.off('error', this.#onError);
    const failure = this.#failure ?? (socket.destroyed ? new Error('closed') : undefined);
    if (failure) {
      socket.destroy();
      throw new SmtpError(`connection to ${this.host}:${this.port} failed before use: ${failure.message}`, {
        phase: 'connect',
        kind: 'network',
        cause: failure,
      });
    }
    return socket;
  }

  /** Not wanted after all: close it unused (now, or when the connect completes). No-op once taken. */
  close(): void {
    if (this.#taken) return;
    this.#taken = true;
    this.#socket.then(
      (s) => s.destroy(),
      () => {},
    );
  }
}
