/**
 * The "lab": every SMTP peer and every latency proxy run in ONE child process, apart from the
 * clients under test. A client that keeps its event loop busy (TLS setup, composing) then cannot
 * delay the proxy's timers or the server's replies — as on real separate machines — and both
 * clients are observed by the same process. The parent drives it over IPC: set the delay, reset
 * and read the round-trip counters (read right after a client's result arrived).
 *
 * Started by `startLab()`; the child is this same file run with `--lab-child` under tsx. The child
 * exits when told to or when its parent goes away (the IPC channel closes), closing every server.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startEximPeers } from './exim.ts';
import { type Peer, startSmtpServerPeer } from './peers.ts';
import { type LatencyProxy, type ProxyStats, startLatencyProxy } from './proxy.ts';

export type PeerId = '587-pipelining' | '465-pipelining' | '587-chunking' | '465-chunking';

export interface LabPeer {
  id: PeerId;
  name: string;
  security: 'starttls' | 'tls';
  pipelining: boolean;
  chunking: boolean;
  /** Where clients connect: the proxy in front of the peer. */
  proxyPort: number;
}

type Call =
  | { op: 'setDelay'; id: PeerId; ms: number }
  | { op: 'reset'; id: PeerId }
  | { op: 'snapshot'; id: PeerId }
  | { op: 'close' };
type Request = Call & { seq: number };

type Response = { seq: number; ok: true; result?: unknown } | { seq: number; ok: false; error: string };

type Ready = { type: 'ready'; peers: LabPeer[] } | { type: 'failed'; error: string };

export interface LabOptions {
  /** Also the implicit-TLS smtp-server peer (465-pipelining). */
  withSmtpServerTls: boolean;
  /** The Exim peers (587-chunking, 465-chunking); default true. Exim missing or broken is an error. */
  exim?: boolean;
}

const RPC_TIMEOUT_MS = 30_000;
const START_TIMEOUT_MS = 60_000;

export class Lab {
  private seq = 0;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  private closed: Promise<void> | undefined;

  constructor(
    private readonly child: ChildProcess,
    readonly peers: LabPeer[],
  ) {
    child.on('message', (m: Response) => {
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    child.on('exit', () => {
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error('lab process exited'));
      }
      this.pending.clear();
    });
  }

  private call<T>(req: Call): Promise<T> {
    const seq = ++this.seq;
    if (!this.child.connected) return Promise.reject(new Error(`lab is closed (${req.op})`));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error(`lab: no answer to ${req.op} within ${RPC_TIMEOUT_MS} ms`));
      }, RPC_TIMEOUT_MS);
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ ...req, seq }, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(seq);
        reject(err);
      });
    });
  }

  setDelay(id: PeerId, ms: number): Promise<void> {
    return this.call({ op: 'setDelay', id, ms });
  }

  reset(id: PeerId): Promise<void> {
    return this.call({ op: 'reset', id });
  }

  snapshot(id: PeerId): Promise<ProxyStats> {
    return this.call({ op: 'snapshot', id });
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return;
      const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
      await this.call({ op: 'close' }).catch(() => {});
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    })();
    return this.closed;
  }
}

/** Fork the lab and wait until every peer it could start is listening behind its proxy. */
export async function startLab(opts: LabOptions): Promise<Lab> {
  const flags = [opts.withSmtpServerTls ? 'tls' : '', opts.exim === false ? 'no-exim' : 'exim'];
  const child = fork(fileURLToPath(import.meta.url), ['--lab-child', ...flags], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lab did not start within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    child.once('message', (m: Ready) => {
      clearTimeout(timer);
      resolve(m);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`lab exited during start (code ${code})`));
    });
  });
  if (ready.type === 'failed') {
    child.kill('SIGKILL');
    throw new Error(`lab: ${ready.error}`);
  }
  return new Lab(child, ready.peers);
}

// ---------------------------------------------------------------------------------------------
// child side
// ---------------------------------------------------------------------------------------------

async function runChild(withSmtpServerTls: boolean, withExim: boolean): Promise<void> {
  const peers: LabPeer[] = [];
  const proxies = new Map<PeerId, LatencyProxy>();
  const toClose: Peer[] = [];

  const add = async (id: PeerId, peer: Peer) => {
    toClose.push(peer);
    const proxy = await startLatencyProxy(peer.port, 0);
    proxies.set(id, proxy);
    peers.push({
      id,
      name: peer.name,
      security: peer.security,
      pipelining: peer.pipelining,
      chunking: peer.chunking,
      proxyPort: proxy.port,
    });
  };
  await add('587-pipelining', await startSmtpServerPeer('starttls'));
  if (withExim) {
    const exim = await startEximPeers();
    if (typeof exim === 'string') {
      // No silent skip: a benchmark case that cannot run is an error.
      for (const p of toClose) await p.close().catch(() => {});
      process.send?.({
        type: 'failed',
        error: `Exim (the CHUNKING peer) cannot run: ${exim}`,
      } satisfies Ready);
      process.disconnect();
      return;
    }
    await add('587-chunking', exim.starttls);
    await add('465-chunking', exim.tls);
  }
  if (withSmtpServerTls) await add('465-pipelining', await startSmtpServerPeer('tls'));

  let closing: Promise<void> | undefined;
  const closeAll = () => {
    closing ??= (async () => {
      for (const p of proxies.values()) await p.close().catch(() => {});
      for (const p of toClose) await p.close().catch(() => {});
    })();
    return closing;
  };
  const reply = (r: Response) => process.send?.(r);

  process.on('message', async (req: Request) => {
    try {
      if (req.op === 'close') {
        await closeAll();
        reply({ seq: req.seq, ok: true });
        process.disconnect();
        return;
      }
      const proxy = proxies.get(req.id);
      if (!proxy) throw new Error(`no peer ${req.id}`);
      if (req.op === 'setDelay') proxy.setDelay(req.ms);
      else if (req.op === 'reset') proxy.reset();
      else {
        reply({ seq: req.seq, ok: true, result: proxy.snapshot() });
        return;
      }
      reply({ seq: req.seq, ok: true });
    } catch (e) {
      reply({ seq: req.seq, ok: false, error: (e as Error).message });
    }
  });
  // Parent gone (normal end or crash): close everything, then leave.
  process.on('disconnect', () => {
    void closeAll().then(() => process.exit(0));
  });
  process.send?.({ type: 'ready', peers } satisfies Ready);
}

if (process.argv[2] === '--lab-child') {
  runChild(process.argv[3] === 'tls', process.argv[4] !== 'no-exim').catch((e) => {
    process.stderr.write(`lab failed: ${(e as Error).stack}\n`);
    process.exit(1);
  });
}
