/**
 * The real `npm start` entry (tsx local/start.ts) as a child process: a busy port gives one clear line and exit
 * code 1, no stack trace. Bounded waits; the child is always killed.
 */
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const tsx = `${repo}node_modules/.bin/tsx`;

let busy: Server;
let busyPort: number;

beforeAll(async () => {
  busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  busyPort = (busy.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((r) => busy.close(() => r()));
});

function run(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(tsx, ['local/start.ts'], {
      cwd: repo,
      env: { ...process.env, ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`npm start did not exit within ${timeoutMs} ms; stdout=${stdout} stderr=${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('npm start on a busy port', () => {
  it('HTTP port busy: one clear line, exit code 1', async () => {
    const r = await run({ PORT: String(busyPort), SMTP_PORT: '0' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `port ${busyPort} is in use; set PORT=… to use another (e.g. PORT=${busyPort + 1} npm start)\n`,
    );
    expect(r.stdout).toBe('');
  });

  it('SMTP port busy: one clear line naming SMTP_PORT, exit code 1', async () => {
    const r = await run({ PORT: '0', SMTP_PORT: String(busyPort) });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `port ${busyPort} is in use; set SMTP_PORT=… to use another (e.g. SMTP_PORT=${busyPort + 1} npm start)\n`,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
