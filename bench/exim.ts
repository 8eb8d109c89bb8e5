/**
 * CHUNKING peer for the benchmarks: Exim 4 from Debian, one foreground daemon on 127.0.0.1 with two
 * ports — a submission-like port (STARTTLS) and an implicit-TLS port (`tls_on_connect_ports`, the 465
 * case). It is the shared test server (test/support/chunking-server.ts: CHUNKING, PIPELINING, STARTTLS
 * with certs/dev, AUTH PLAIN/LOGIN after TLS) with two benchmark options:
 * - `queueOnly`: messages are accepted and spooled but not delivered. Otherwise Exim forks a
 *   delivery process per message and, on this 2-core machine, those deliveries (not the SMTP
 *   conversation) set the pace: 20 pipelined messages took 5.7 s instead of 0.64 s.
 * - `tmpfs`: the spool lives on /dev/shm when there is one, so Exim's fsyncs do not measure the disk.
 * Resolves to a reason string when Exim is not usable; the lab then fails with it (no case is skipped).
 */
import { type ChunkingServer, startChunkingServer } from '../test/support/chunking-server.ts';
import { BENCH_AUTH, type Peer } from './peers.ts';

export interface EximPeers {
  starttls: Peer;
  tls: Peer;
}

export async function startEximPeers(): Promise<EximPeers | string> {
  let server: ChunkingServer;
  try {
    server = await startChunkingServer({
      username: BENCH_AUTH.username,
      password: BENCH_AUTH.password,
      implicitTls: true,
      queueOnly: true,
      tmpfs: true,
    });
  } catch (err) {
    return (err as Error).message;
  }
  const close = () => server.close();
  const peer = (security: 'starttls' | 'tls', port: number): Peer => ({
    name: security === 'tls' ? 'Exim 4 (implicit TLS)' : 'Exim 4 (STARTTLS)',
    port,
    security,
    pipelining: true,
    chunking: true,
    received: () => 0,
    close,
  });
  return { starttls: peer('starttls', server.port), tls: peer('tls', server.tlsPort as number) };
}
