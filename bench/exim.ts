/**
 * CHUNKING peer for the benchmarks: Exim 4 from Debian, one foreground daemon on 127.0.0.1 with two
 * ports — a submission-like port (STARTTLS) and an implicit-TLS port (`tls_on_connect_ports`, the 465
 * case). The configuration is the shared test one (test/support/exim/config.ts: CHUNKING, PIPELINING,
 * STARTTLS with certs/dev, AUTH PLAIN/LOGIN after TLS) with two benchmark changes:
 * - `queue_only = true`: messages are accepted and spooled but not delivered. Otherwise Exim forks a
 *   delivery process per message and, on this 2-core machine, those deliveries (not the SMTP
 *   conversation) set the pace: 20 pipelined messages took 5.7 s instead of 0.64 s.
 * - the spool lives on tmpfs (/dev/shm) when there is one, so Exim's fsyncs do not measure the disk.
 * Resolves to a reason string when Exim is not usable, so the benchmark prints "skipped: <reason>".
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { findExim } from '../test/support/chunking-server.ts';
import { eximConfig } from '../test/support/exim/config.ts';
import { BENCH_AUTH, type Peer, TLS_MATERIAL } from './peers.ts';

const CERTS = fileURLToPath(new URL('../certs/dev/', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address() as net.AddressInfo;
      srv.close(() => resolve(address.port));
    });
  });
}

/** One TLS connect to the implicit-TLS port: true when the 220 greeting arrives inside TLS. */
function probeTlsGreeting(port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: TLS_MATERIAL.ca, servername: 'localhost' });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      if (ok) socket.end('QUIT\r\n');
      else socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (/^220 .*\r\n/m.test(buf)) done(true);
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

/** The account Exim delivers as (same rule as the shared helper): Debian-exim when root, else us. */
function eximAccount(): { name: string; uid: number; gid: number; group: string } | string {
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n');
  const groups = readFileSync('/etc/group', 'utf8').split('\n');
  const uid = process.getuid?.() ?? -1;
  const entries = passwd.map((line) => line.split(':')).filter((f) => f[0] && f[2] && f[3]);
  // As root, deliveries run as the compiled-in Exim user: prefer Debian's name, in this order.
  const entry =
    uid === 0
      ? ['Debian-exim', 'exim', 'mail']
          .map((n) => entries.find((f) => f[0] === n))
          .find((f) => f !== undefined)
      : entries.find((f) => Number(f[2]) === uid);
  if (entry) {
    const [name, , u, g] = entry as [string, string, string, string];
    const group = groups.map((l) => l.split(':')).find((f) => f[2] === g)?.[0] ?? g;
    return { name, uid: Number(u), gid: Number(g), group };
  }
  return 'no account for Exim in /etc/passwd';
}

async function killGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 2000);
    await exited;
    clearTimeout(timer);
  }
}

export interface EximPeers {
  starttls: Peer;
  tls: Peer;
}

export async function startEximPeers(): Promise<EximPeers | string> {
  const exim = findExim();
  if (!exim) return 'Exim not installed';
  const account = eximAccount();
  if (typeof account === 'string') return account;
  let lastReason = 'not started';
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'exim-bench-'));
    let child: ChildProcess | undefined;
    try {
      for (const sub of ['spool', 'log', 'maildir', 'tls']) mkdirSync(join(dir, sub));
      const certFile = join(dir, 'tls', 'localhost.pem');
      const keyFile = join(dir, 'tls', 'localhost.key');
      copyFileSync(join(CERTS, 'localhost.pem'), certFile);
      copyFileSync(join(CERTS, 'localhost.key'), keyFile);
      const plainPort = await freePort();
      const tlsPort = await freePort();
      const config = eximConfig({
        dir,
        port: plainPort,
        tlsOnConnectPort: tlsPort,
        certFile,
        keyFile,
        user: account.name,
        group: account.group,
        username: BENCH_AUTH.username,
        password: BENCH_AUTH.password,
        sizeLimit: 50 * 1024 * 1024,
        ...(process.getuid?.() === 0 ? {} : { unprivileged: { gid: account.gid } }),
      }).replace('queue_only = false\n', 'queue_only = true\n');
      if (!config.includes('tls_on_connect_ports') || !config.includes('queue_only = true')) {
        return 'Exim configuration layout changed (test/support/exim/config.ts)';
      }
      const confFile = join(dir, 'exim.conf');
      writeFileSync(confFile, config);
      if (process.getuid?.() === 0) {
        for (const p of ['', 'spool', 'log', 'maildir', 'tls', 'tls/localhost.pem', 'tls/localhost.key']) {
          chownSync(join(dir, p), account.uid, account.gid);
        }
      }
      // No -oX: the ports come from daemon_smtp_ports (-oX would replace the list); the pid file is in the config.
      child = spawn(exim, ['-C', confFile, '-bdf'], {
        cwd: dir,
        stdio: 'ignore',
        detached: true,
      });
      const proc = child;
      let exited = false;
      proc.once('exit', () => {
        exited = true;
      });
      proc.once('error', () => {
        exited = true;
      });
      const deadline = Date.now() + 5000;
      let up = false;
      while (!up && !exited && Date.now() < deadline) {
        up = await probeTlsGreeting(tlsPort, 1000);
        if (!up) await sleep(50);
      }
      if (up) {
        let closed: Promise<void> | undefined;
        const close = () => {
          closed ??= killGroup(proc).then(() => rmSync(dir, { recursive: true, force: true }));
          return closed;
        };
        const peer = (security: 'starttls' | 'tls', port: number): Peer => ({
          name: security === 'tls' ? 'Exim 4 (implicit TLS)' : 'Exim 4 (STARTTLS)',
          port,
          security,
          pipelining: true,
          chunking: true,
          received: () => 0,
          close,
        });
        return { starttls: peer('starttls', plainPort), tls: peer('tls', tlsPort) };
      }
      let log = '';
      try {
        log =
          readFileSync(join(dir, 'log', 'paniclog'), 'utf8') +
          readFileSync(join(dir, 'log', 'mainlog'), 'utf8');
      } catch {
        /* no log */
      }
      lastReason = `exim did not greet within 5 s ${log.trim().slice(-300)}`;
      await killGroup(proc);
    } catch (err) {
      lastReason = `exim start failed: ${(err as Error).message}`;
      if (child) await killGroup(child);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return lastReason;
}
