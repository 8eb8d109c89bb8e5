/** Spawns the real `smtp-send` (bin/smtp-send.js → tsx → functions/cli/main.ts) and collects its output. */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/smtp-send.js', import.meta.url));
export const CA_FILE = fileURLToPath(new URL('../../certs/dev/ca.pem', import.meta.url));

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node bin/smtp-send.js …args` with stdin a closed pipe (not a TTY, so never a prompt) and a bounded
 * lifetime (SIGKILL after `timeoutMs`).
 */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; command?: string[] } = {},
): Promise<CliRun> {
  const [cmd, ...pre] = opts.command ?? [process.execPath, BIN];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, [...pre, ...args], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.end();
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * The same CLI code in this process: `run(argv, io)` from functions/cli/main.ts with captured stdout/stderr and a
 * closed, non-TTY stdin. Used for the many usage-error cases (a process per case would cost seconds each).
 */
export async function runInProcess(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const { run } = await import('../../functions/cli/main.ts');
  let stdout = '';
  let stderr = '';
  const stdin = Readable.from([]) as unknown as NodeJS.ReadStream;
  const code = await run(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin,
    env,
  });
  return { code, signal: null, stdout, stderr };
}

/** A port with nothing listening (bound then released). */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A stack trace line ("    at fn (file:1:2)") anywhere in the text. */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+:\d+:\d+\)?$/m.test(text);
}
