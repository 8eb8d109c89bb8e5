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

/** Start `npm start` in the background and wait (bounded) for its banner; returns the API port. */
function startInBackground(env: Record<string, string>, timeoutMs = 90_000, viaNpm = false) {
  const child = spawn(viaNpm ? 'npm' : tsx, viaNpm ? ['start', '--silent'] : ['local/start.ts'], {
    cwd: repo,
    env: { ...process.env, ...env, POWERTOOLS_LOG_LEVEL: 'ERROR', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const port = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no banner within ${timeoutMs} ms: ${stdout} ${stderr}`)),
      timeoutMs,
    );
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /Demo form\s+http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before the banner: ${stderr}`));
    });
  });
  return { child, port, exited, output: () => ({ stdout, stderr }) };
}

describe('npm start on a busy port', () => {
  it('started twice: the second says which port is busy and exits 1; SIGTERM stops the first cleanly', async () => {
    const first = startInBackground({ PORT: '0', SMTP_PORT: '0' });
    try {
      const port = await first.port;
      expect(first.output().stdout).toContain('locally NO IAM signature is required');
      expect(first.output().stdout).toContain('/forms/contact');
      expect(first.output().stdout).toContain('DEV-ONLY');

      const second = await run({ PORT: String(port), SMTP_PORT: '0' });
      expect(second.code).toBe(1);
      expect(second.stderr).toBe(
        `port ${port} is in use; set PORT=… to use another (e.g. PORT=${port + 1} npm start)\n`,
      );
      expect(second.stdout).toBe('');

      // The first one is unaffected…
      const health = await fetch(`http://127.0.0.1:${port}/_local/health`);
      expect(await health.json()).toMatchObject({ ok: true, formIds: ['contact'] });

      // …and SIGTERM takes everything down: exit 0, the port is free again.
      first.child.kill('SIGTERM');
      const code = await Promise.race([
        first.exited,
        new Promise((r) => setTimeout(() => r('timeout'), 20_000)),
      ]);
      expect(code).toBe(0);
      const probe = createServer();
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.listen(port, '127.0.0.1', () => resolve());
      });
      await new Promise<void>((r) => probe.close(() => r()));
    } finally {
      if (first.child.exitCode === null) first.child.kill('SIGKILL');
    }
  }, 180_000);

  it('SIGTERM to npm itself (whose sh does not pass it on) still stops the server and frees the port', async () => {
    const npm = startInBackground({ PORT: '0', SMTP_PORT: '0' }, 90_000, true);
    let serverPid: number | undefined;
    try {
      const port = await npm.port;
      serverPid = ((await (await fetch(`http://127.0.0.1:${port}/_local/health`)).json()) as { pid: number })
        .pid;
      expect(serverPid).not.toBe(npm.child.pid);
      npm.child.kill('SIGTERM');
      await Promise.race([npm.exited, new Promise((r) => setTimeout(r, 20_000))]);
      // The server process is a grandchild of npm; poll (bounded) until its port can be taken.
      let free = false;
      for (let i = 0; i < 40 && !free; i++) {
        const probe = createServer();
        free = await new Promise<boolean>((resolve) => {
          probe.once('error', () => resolve(false));
          probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
        });
        if (!free) await new Promise((r) => setTimeout(r, 250));
      }
      expect(free).toBe(true);
    } finally {
      if (npm.child.exitCode === null) npm.child.kill('SIGKILL');
      // Never leave an orphan behind, even when the test fails.
      if (serverPid !== undefined) {
        try {
          process.kill(serverPid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }, 180_000);

  it('SMTP port busy: one clear line naming SMTP_PORT, exit code 1', async () => {
    const r = await run({ PORT: '0', SMTP_PORT: String(busyPort) });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `port ${busyPort} is in use; set SMTP_PORT=… to use another (e.g. SMTP_PORT=${busyPort + 1} npm start)\n`,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
