/**
 * A real CHUNKING (RFC 3030 BDAT) SMTP server for tests: Exim 4.96 run as a foreground daemon on 127.0.0.1 from a
 * generated configuration in a fresh temp dir. The npm `smtp-server` has no CHUNKING, so BDAT is proven here.
 *
 * Offers: CHUNKING, PIPELINING, 8BITMIME, SMTPUTF8, SIZE, STARTTLS (certs/dev/localhost), AUTH PLAIN + LOGIN after
 * TLS, any sender to any recipient, except local parts `reject-*` (550 5.1.1) and `defer-*` (451 4.2.0).
 * Every message is delivered into a maildir inside the temp dir and read back by `messages()`.
 *
 * `startChunkingServer()` throws when Exim is not installed (naming the install command: the set-up step of
 * `npm test` installs `exim4-daemon-heavy`) and when it is installed but does not start: a missing or broken
 * harness fails, it never skips.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { eximConfig } from './exim/config.ts';
import { requireTool } from './tools.ts';

const CERTS = fileURLToPath(new URL('../../certs/dev/', import.meta.url));

export interface ReceivedMessage {
  /** The message bytes as received (CRLF line endings), with Exim's Return-path/Envelope-to removed. */
  raw: Buffer;
  /** MAIL FROM reverse path ('' for the null sender), from Exim's Return-path header. */
  envelopeFrom?: string;
  /** Accepted RCPT TO addresses, from Exim's Envelope-to header. */
  recipients: string[];
  /** Maildir file name (Exim delivers one file per message). */
  file: string;
}

export interface ChunkingServer {
  host: '127.0.0.1';
  /** Plain port: STARTTLS offered, AUTH only after it. */
  port: number;
  /** Implicit-TLS port, when started with `implicitTls: true`. */
  tlsPort?: number;
  /** PEM of certs/dev/ca.pem: trust this to verify the server's certificate for localhost / 127.0.0.1. */
  ca: string;
  username: string;
  password: string;
  /** Exim's process id (the daemon; also its process group id). */
  pid: number;
  /** The temp dir holding config, spool, log and maildir (removed by close()). */
  dir: string;
  /** Messages delivered so far, oldest first. */
  messages(): Promise<ReceivedMessage[]>;
  /** Resolves once at least `n` messages arrived; rejects after `ms` with Exim's log tail. */
  waitForMessages(n: number, ms?: number): Promise<ReceivedMessage[]>;
  /** Exim's main log (for diagnostics in failing tests). */
  log(): string;
  /** Stops the daemon (and its children), waits for it to exit, removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

export interface ChunkingServerOptions {
  username?: string;
  password?: string;
  /** SIZE limit advertised and enforced (octets). Default 50 MiB. */
  sizeLimit?: number;
  /** Startup deadline in ms (per attempt). Default 5000. */
  startTimeoutMs?: number;
  /** Also listen on a second port with TLS on connect (implicit TLS, RFC 8314): `tlsPort`. */
  implicitTls?: boolean;
  /** Accept and spool but never deliver (benchmarks: no delivery fork per message); `messages()` stays empty. */
  queueOnly?: boolean;
  /** Put the temp dir, spool included, on tmpfs (/dev/shm) when there is one, so fsyncs do not measure the disk. */
  tmpfs?: boolean;
}

interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** Looks a user up in /etc/passwd (no `getent` process needed). */
function passwdEntry(pred: (name: string, uid: number) => boolean): Account | null {
  let text = '';
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name && uid && gid && pred(name, Number(uid))) return { name, uid: Number(uid), gid: Number(gid) };
  }
  return null;
}

function groupName(gid: number): string {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , g] = line.split(':');
      if (name && Number(g) === gid) return name;
    }
  } catch {
    /* fall through */
  }
  return String(gid);
}

/** Which account Exim delivers as: the Debian default when we are root, else ourselves (Exim drops to us). */
function eximAccount(): Account | string {
  const uid = process.getuid?.() ?? -1;
  if (uid === 0) {
    const acct = ['Debian-exim', 'exim', 'mail']
      .map((n) => passwdEntry((name) => name === n))
      .find((a): a is Account => a !== null);
    return acct ?? 'no Debian-exim/exim/mail account in /etc/passwd';
  }
  const me = passwdEntry((_name, u) => u === uid);
  return me ? { ...me, gid: process.getgid?.() ?? me.gid } : `uid ${uid} not in /etc/passwd`;
}

/**
 * Where the per-server temp dir goes. As root, Exim's delivery processes run as the Exim user and must be able to
 * traverse every parent directory: a private TMPDIR (e.g. /root/tmp, mode 0700) would break delivery, so fall
 * back to /tmp then.
 */
function baseTempDir(tmpfs: boolean): string {
  if (tmpfs && existsSync('/dev/shm')) return '/dev/shm'; // mode 1777: traversable by the Exim user
  const base = tmpdir();
  if (process.getuid?.() !== 0) return base;
  try {
    let p = base;
    for (;;) {
      if ((statSync(p).mode & 0o001) === 0) return '/tmp';
      const parent = dirname(p);
      if (parent === p) return base;
      p = parent;
    }
  } catch {
    return '/tmp';
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One connect attempt: resolves true when a 220 greeting arrives (then says QUIT), false otherwise. */
function probeGreeting(port: number, ms: number, implicitTls = false): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = implicitTls
      ? tls.connect({
          host: '127.0.0.1',
          port,
          servername: 'localhost',
          ca: readFileSync(join(CERTS, 'ca.pem')),
        })
      : net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      if (ok) sock.end('QUIT\r\n');
      else sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (/^220 .*\r\n/m.test(buf)) done(true);
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Parses Exim's added headers at the top of a delivered file and strips them. */
export function parseDelivered(file: string, data: Buffer): ReceivedMessage {
  let pos = 0;
  let envelopeFrom: string | undefined;
  let recipients: string[] = [];
  // Exim writes exactly one "Return-path:" then one "Envelope-to:" (folded) above the message's own headers.
  for (const name of ['Return-path', 'Envelope-to'] as const) {
    const prefix = `${name}:`;
    if (data.toString('latin1', pos, pos + prefix.length).toLowerCase() !== prefix.toLowerCase()) continue;
    let end = data.indexOf('\r\n', pos);
    while (end >= 0 && (data[end + 2] === 0x20 || data[end + 2] === 0x09))
      end = data.indexOf('\r\n', end + 2);
    if (end < 0) break;
    const value = data
      .toString('utf8', pos + prefix.length, end)
      .replace(/\r\n[ \t]/g, ' ')
      .trim();
    if (name === 'Return-path') envelopeFrom = value.replace(/^<(.*)>$/, '$1');
    else
      recipients = value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    pos = end + 2;
  }
  return { raw: data.subarray(pos), envelopeFrom, recipients, file };
}

export async function startChunkingServer(opts: ChunkingServerOptions = {}): Promise<ChunkingServer> {
  const exim = requireTool('exim');
  const acct = eximAccount();
  if (typeof acct === 'string') throw new Error(`Exim cannot run its deliveries: ${acct}`);
  const group = groupName(acct.gid);
  const username = opts.username ?? 'tester@example.com';
  const password = opts.password ?? 'chunky-test-secret';
  const startTimeout = opts.startTimeoutMs ?? 5000;

  let lastReason = 'not started';
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(baseTempDir(opts.tmpfs === true), 'exim-chunking-'));
    try {
      for (const sub of ['spool', 'log', 'maildir', 'tls']) mkdirSync(join(dir, sub));
      const certFile = join(dir, 'tls', 'localhost.pem');
      const keyFile = join(dir, 'tls', 'localhost.key');
      copyFileSync(join(CERTS, 'localhost.pem'), certFile);
      copyFileSync(join(CERTS, 'localhost.key'), keyFile);
      const port = await freePort();
      const tlsPort = opts.implicitTls ? await freePort() : undefined;
      const confFile = join(dir, 'exim.conf');
      writeFileSync(
        confFile,
        eximConfig({
          dir,
          port,
          certFile,
          keyFile,
          user: acct.name,
          group,
          username,
          password,
          sizeLimit: opts.sizeLimit ?? 50 * 1024 * 1024,
          ...(tlsPort !== undefined ? { tlsOnConnectPort: tlsPort } : {}),
          ...(opts.queueOnly ? { queueOnly: true } : {}),
          ...(process.getuid?.() !== 0 ? { unprivileged: { gid: acct.gid } } : {}),
        }),
      );
      if (process.getuid?.() === 0) {
        // exim.conf stays root-owned and 0644 (Exim's "Configure owner: 0:0" check for -C files)
        for (const p of ['', 'spool', 'log', 'maildir', 'tls', 'tls/localhost.pem', 'tls/localhost.key']) {
          chownSync(join(dir, p), acct.uid, acct.gid);
        }
      }
      const started = await launch(exim, dir, confFile, port, tlsPort, startTimeout);
      if ('server' in started) {
        const ca = readFileSync(join(CERTS, 'ca.pem'), 'utf8');
        const server = makeServer(started.child, dir, port, ca, username, password);
        if (tlsPort !== undefined) server.tlsPort = tlsPort;
        return server;
      }
      lastReason = started.reason;
    } catch (err) {
      lastReason = `exim start failed: ${(err as Error).message}`;
    }
    rmSync(dir, { recursive: true, force: true });
  }
  // Exim is installed but would not start: that is a broken harness, not a reason to skip.
  throw new Error(`Exim CHUNKING server did not start after 3 attempts: ${lastReason}`);
}

async function launch(
  exim: string,
  dir: string,
  confFile: string,
  port: number,
  tlsPort: number | undefined,
  timeoutMs: number,
): Promise<{ server: true; child: ChildProcess } | { reason: string }> {
  // -bdf: daemon in the foreground (our child; no double fork). The pid file is pid_file_path (-oP is refused
  // for callers other than root and the Exim user). The ports come from
  // daemon_smtp_ports (-oX would replace that list). Deliveries start right after each message is accepted.
  const child = spawn(exim, ['-C', confFile, '-bdf'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    // its own process group, so close() can signal the daemon and any delivery process it forked
    detached: true,
  });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  let exited: string | null = null;
  child.once('exit', (code, sig) => {
    exited = `exim exited during startup (code ${code}, signal ${sig})`;
  });
  child.once('error', (err) => {
    exited = `exim could not be spawned: ${err.message}`;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited) {
    const ms = Math.max(50, Math.min(1000, deadline - Date.now()));
    if (
      (await probeGreeting(port, ms)) &&
      (tlsPort === undefined || (await probeGreeting(tlsPort, ms, true)))
    ) {
      return { server: true, child };
    }
    await sleep(25);
  }
  await killGroup(child);
  const logText = safeRead(join(dir, 'log', 'mainlog')) + safeRead(join(dir, 'log', 'paniclog'));
  return {
    reason: `${exited ?? `no greeting within ${timeoutMs} ms`}: ${(output + logText).trim().slice(-600)}`,
  };
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Stops the daemon without leaving orphans for init to reap: waits (≤ 1.5 s) for its receiving/delivery children
 * to finish, SIGKILLs any that remain (the daemon reaps them), then SIGKILLs the daemon itself and awaits its
 * exit. SIGTERM is avoided on purpose: Exim answers it by forking `exim -oPX` to delete the pid file, an orphan.
 * Bounded: at most about 4 s in total.
 */
async function killGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const others = () => groupMembers(pid).filter((p) => p !== pid);
  let deadline = Date.now() + 1500;
  while (others().length > 0 && Date.now() < deadline) await sleep(20);
  for (const p of others()) signalPid(p, 'SIGKILL');
  deadline = Date.now() + 500;
  while (others().length > 0 && Date.now() < deadline) await sleep(20);
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    signalPid(pid, 'SIGKILL');
    await exited;
  }
  deadline = Date.now() + 2000;
  while (groupAlive(pid) && Date.now() < deadline) {
    signalGroup(pid, 'SIGKILL');
    await sleep(20);
  }
}

/** Live (non-zombie) processes of a process group, from /proc (Linux); [] when /proc is not readable. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'latin1');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses: split after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(rest[2]) === pgid && rest[0] !== 'Z') out.push(Number(e));
  }
  return out;
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    /* group already gone */
  }
}

function makeServer(
  child: ChildProcess,
  dir: string,
  port: number,
  ca: string,
  username: string,
  password: string,
): ChunkingServer {
  let closed: Promise<void> | null = null;
  const maildirNew = join(dir, 'maildir', 'new');

  const messages = async (): Promise<ReceivedMessage[]> => {
    let names: string[];
    try {
      names = await readdir(maildirNew);
    } catch {
      return [];
    }
    // Maildir names start with the delivery time in seconds then M<microseconds>: sort numerically.
    const key = (n: string) => {
      const m = /^(\d+)\.M(\d+)P(\d+)/.exec(n);
      return m ? Number(m[1]) * 1e6 + Number(m[2]) : 0;
    };
    names.sort((a, b) => key(a) - key(b) || a.localeCompare(b));
    return Promise.all(names.map(async (n) => parseDelivered(n, await readFile(join(maildirNew, n)))));
  };

  const log = () => safeRead(join(dir, 'log', 'mainlog'));

  return {
    host: '127.0.0.1',
    port,
    ca,
    username,
    password,
    pid: child.pid ?? -1,
    dir,
    messages,
    log,
    async waitForMessages(n: number, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const got = await messages();
        if (got.length >= n) return got;
        if (Date.now() >= deadline) {
          throw new Error(
            `waited ${ms} ms for ${n} message(s), have ${got.length}; exim log:\n${log().split('\n').slice(-15).join('\n')}`,
          );
        }
        await sleep(25);
      }
    },
    close() {
      closed ??= (async () => {
        await killGroup(child);
        rmSync(dir, { recursive: true, force: true });
      })();
      return closed;
    },
  };
}
