/**
 * Latency-injecting TCP proxy for loopback benchmarks (kernel netem is not available).
 *
 * - Listens on 127.0.0.1:0 and forwards every accepted connection to `target`.
 * - Each chunk is delayed by `oneWayMs` per direction. Order is preserved: each direction has ONE
 *   queue of (due time, bytes) and ONE timer armed for the head — never a timer per chunk racing.
 * - The TCP handshake is emulated: the client's connect completes at once on loopback, so the
 *   upstream connection is opened only after 3 × one-way (SYN, SYN-ACK, ACK). A server that speaks
 *   first is therefore heard after 2 RTT, and a client that speaks first (TLS on 465) reaches the
 *   server at 1.5 RTT — both as on a real path with that latency.
 * - It observes both clients the same way. A "flight" is a run of bytes in one direction with no
 *   bytes in the other direction in between. `clientFlights` counts client→server direction
 *   switches; `serverFlights` counts server→client switches (the first greeting included). The
 *   round trips a client needed before its result was known are `1 (TCP handshake) + serverFlights`
 *   read at the moment its result arrived (every server flight is something it waited for).
 */
import net from 'node:net';

export interface ProxyTarget {
  host: '127.0.0.1';
  port: number;
}

export interface ConnectionStats {
  id: number;
  /** Client→server direction switches (client bytes after server bytes, or first client bytes). */
  clientFlights: number;
  /** Server→client direction switches (server bytes after client bytes, or the first server bytes). */
  serverFlights: number;
  bytesUp: number;
  bytesDown: number;
  closed: boolean;
}

export interface ProxyStats {
  connections: ConnectionStats[];
  /** Sum over connections of `1 + serverFlights` (the TCP handshake is a round trip too). */
  roundTrips: number;
  clientFlights: number;
}

interface QueuedChunk {
  due: number;
  bytes: Buffer | null; // null = end of stream (FIN), delivered in order after the data
}

/** Upper bound on bytes waiting in one direction; beyond that the source is paused (backpressure). */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/** Upper bound on connections one proxy will carry at once. */
const MAX_CONNECTIONS = 256;

/**
 * One direction of one connection: chunks are delivered in arrival order, each no earlier than its
 * arrival time + delay, and never before `gate` opens (used for the emulated TCP handshake).
 */
class DelayedPipe {
  private readonly queue: QueuedChunk[] = [];
  private timer: NodeJS.Timeout | undefined;
  private queuedBytes = 0;
  private gateOpen: boolean;
  private finished = false;

  constructor(
    private readonly source: net.Socket,
    private readonly delayMs: number,
    private readonly deliver: (bytes: Buffer) => boolean,
    private readonly end: () => void,
    gateOpen: boolean,
    private readonly onDrainNeeded: (resume: () => void) => void,
  ) {
    this.gateOpen = gateOpen;
  }

  push(bytes: Buffer | null): void {
    if (this.finished) return;
    this.queue.push({ due: performance.now() + this.delayMs, bytes });
    if (bytes) {
      this.queuedBytes += bytes.length;
      if (this.queuedBytes > MAX_QUEUED_BYTES) this.source.pause();
    }
    this.schedule();
  }

  openGate(): void {
    this.gateOpen = true;
    this.schedule();
  }

  stop(): void {
    this.finished = true;
    this.queue.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer || !this.gateOpen || this.finished) return;
    const head = this.queue[0];
    if (!head) return;
    const wait = head.due - performance.now();
    if (wait <= 0) {
      this.flush();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, Math.ceil(wait));
  }

  /** Deliver every chunk whose time has come, in order; then re-arm for the new head. */
  private flush(): void {
    const now = performance.now();
    // Bounded: at most the current queue length per call.
    let budget = this.queue.length;
    while (budget-- > 0) {
      const head = this.queue[0];
      if (!head || head.due > now + 0.5) break;
      this.queue.shift();
      if (head.bytes === null) {
        this.finished = true;
        this.end();
        return;
      }
      this.queuedBytes -= head.bytes.length;
      const flowing = this.deliver(head.bytes);
      if (this.queuedBytes <= MAX_QUEUED_BYTES && this.source.isPaused()) this.source.resume();
      if (!flowing) {
        // The receiving socket is full: wait for it to drain before delivering more.
        this.onDrainNeeded(() => this.schedule());
        return;
      }
    }
    this.schedule();
  }
}

export class LatencyProxy {
  private server: net.Server | undefined;
  /** Teardown of every live connection (sockets, timers), run by close(). */
  private readonly live = new Set<() => void>();
  private readonly stats: ConnectionStats[] = [];
  private nextId = 1;
  private oneWay: number;

  constructor(
    private readonly target: ProxyTarget,
    oneWayMs = 0,
  ) {
    this.oneWay = oneWayMs;
  }

  /** Change the injected one-way delay for connections accepted from now on. */
  setDelay(oneWayMs: number): void {
    if (!Number.isFinite(oneWayMs) || oneWayMs < 0 || oneWayMs > 10_000) throw new RangeError('delay');
    this.oneWay = oneWayMs;
  }

  get delayMs(): number {
    return this.oneWay;
  }

  get port(): number {
    const address = this.server?.address();
    if (!address || typeof address === 'string') throw new Error('proxy not listening');
    return address.port;
  }

  async start(): Promise<this> {
    const server = net.createServer({ allowHalfOpen: true }, (client) => this.accept(client));
    server.maxConnections = MAX_CONNECTIONS;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return this;
  }

  /** Forget the counters of past connections (open connections keep counting from zero). */
  reset(): void {
    this.stats.length = 0;
  }

  /** Counters as seen right now; take it the moment a client's result arrives. */
  snapshot(): ProxyStats {
    const connections = this.stats.map((s) => ({ ...s }));
    return {
      connections,
      roundTrips: connections.reduce((n, c) => n + 1 + c.serverFlights, 0),
      clientFlights: connections.reduce((n, c) => n + c.clientFlights, 0),
    };
  }

  async close(): Promise<void> {
    for (const teardown of [...this.live]) teardown();
    this.live.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const delay = this.oneWay;
    const stat: ConnectionStats = {
      id: this.nextId++,
      clientFlights: 0,
      serverFlights: 0,
      bytesUp: 0,
      bytesDown: 0,
      closed: false,
    };
    this.stats.push(stat);
    // Who spoke last, as observed at the proxy: flights are counted on direction switches.
    let last: 'none' | 'client' | 'server' = 'none';
    const upstream = new net.Socket({ allowHalfOpen: true });
    client.setNoDelay(true);
    upstream.setNoDelay(true);

    const teardown = () => {
      stat.closed = true;
      up.stop();
      down.stop();
      clearTimeout(connectTimer);
      clearTimeout(closing);
      client.destroy();
      upstream.destroy();
      this.live.delete(teardown);
    };
    this.live.add(teardown);

    const up = new DelayedPipe(
      client,
      delay,
      (bytes) => upstream.write(bytes),
      () => upstream.end(),
      false, // opens when the emulated TCP handshake is done
      (resume) => upstream.once('drain', resume),
    );
    const down = new DelayedPipe(
      upstream,
      delay,
      (bytes) => client.write(bytes),
      () => client.end(),
      true,
      (resume) => client.once('drain', resume),
    );

    client.on('data', (bytes: Buffer) => {
      stat.bytesUp += bytes.length;
      if (last !== 'client') stat.clientFlights++;
      last = 'client';
      up.push(bytes);
    });
    client.on('end', () => up.push(null));
    upstream.on('data', (bytes: Buffer) => {
      stat.bytesDown += bytes.length;
      if (last !== 'server') stat.serverFlights++;
      last = 'server';
      down.push(bytes);
    });
    upstream.on('end', () => down.push(null));
    client.on('error', teardown);
    upstream.on('error', teardown);
    // When one side is gone, give bytes still queued towards the other side time to arrive
    // (a final QUIT, a last reply), then close both. Bounded by the injected delay plus a grace.
    let closing: NodeJS.Timeout | undefined;
    const closeSoon = () => {
      if (closing) return;
      closing = setTimeout(teardown, 2 * delay + 250);
    };
    client.on('close', closeSoon);
    upstream.on('close', closeSoon);

    // Emulated TCP handshake: SYN + SYN-ACK + ACK = 3 one-way delays before the server accepts.
    const connectTimer = setTimeout(() => {
      if (client.destroyed) {
        teardown();
        return;
      }
      upstream.connect(this.target.port, this.target.host, () => up.openGate());
    }, 3 * delay);
  }
}

/** Start a proxy in front of `port` on 127.0.0.1. */
export async function startLatencyProxy(port: number, oneWayMs = 0): Promise<LatencyProxy> {
  return new LatencyProxy({ host: '127.0.0.1', port }, oneWayMs).start();
}
