/**
 * SMTP peers for the benchmarks, all on 127.0.0.1 with ephemeral ports.
 * - `smtp-server` (npm) in this process: STARTTLS + AUTH + PIPELINING (it has no CHUNKING), or
 *   implicit TLS (`secure: true`, the 465 case).
 * Every message is read to its end and counted; nothing is stored.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SMTPServer } from 'smtp-server';

const certs = (name: string) => fileURLToPath(new URL(`../certs/dev/${name}`, import.meta.url));

export const TLS_MATERIAL = {
  ca: readFileSync(certs('ca.pem'), 'utf8'),
  cert: readFileSync(certs('localhost.pem'), 'utf8'),
  key: readFileSync(certs('localhost.key'), 'utf8'),
};

/** Dev-only benchmark credentials (not a secret: accepted by the local peers only). */
export const BENCH_AUTH = { username: 'bench', password: 'bench-password' };

export interface Peer {
  name: string;
  port: number;
  /** 'starttls' on a submission-like port, 'tls' for implicit TLS (465-like). */
  security: 'starttls' | 'tls';
  pipelining: boolean;
  chunking: boolean;
  /** Messages fully received so far. */
  received(): number;
  close(): Promise<void>;
}

export async function startSmtpServerPeer(
  security: 'starttls' | 'tls',
  /** Receives each message's bytes (tests); the benchmark itself keeps nothing. */
  onMessage?: (raw: Buffer) => void,
): Promise<Peer> {
  let received = 0;
  const server = new SMTPServer({
    secure: security === 'tls',
    key: TLS_MATERIAL.key,
    cert: TLS_MATERIAL.cert,
    name: 'localhost',
    banner: 'bench peer',
    logger: false,
    // No reverse DNS of 127.0.0.1 before the greeting: a server-side wait that is not the client's.
    disableReverseLookup: true,
    authMethods: ['PLAIN', 'LOGIN'],
    size: 10 * 1024 * 1024,
    onAuth(auth, _session, callback) {
      if (auth.username === BENCH_AUTH.username && auth.password === BENCH_AUTH.password) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error('Invalid username or password'));
      }
    },
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        if (onMessage) chunks.push(chunk);
      });
      stream.on('end', () => {
        received++;
        onMessage?.(Buffer.concat(chunks));
        callback(null, `Ok: queued as B${received}`);
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    name: security === 'tls' ? 'smtp-server (implicit TLS)' : 'smtp-server (STARTTLS)',
    port,
    security,
    pipelining: true,
    chunking: false,
    received: () => received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
