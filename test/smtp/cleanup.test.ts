/** After every API call — success or failure — no socket and no timer of ours is left keeping the process alive. */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpClient, SmtpError, sendBatch, sendMail, verify } from '../../functions/smtp/index.ts';
import { AUTH as auth, outgoing } from '../support/fixtures.ts';
import { type ScriptedServer, startScriptedServer } from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';
import { requireTool } from '../support/tools.ts';

const msg = outgoing();

let ok: ScriptedServer;
let silent: ScriptedServer;
let dropper: ScriptedServer;
beforeAll(async () => {
  ok = await startScriptedServer({ extensions: ['PIPELINING', 'CHUNKING', 'AUTH PLAIN'] });
  silent = await startScriptedServer({
    extensions: ['PIPELINING', 'AUTH PLAIN'],
    onMessage: () => ({ silent: true }),
  });
  dropper = await startScriptedServer({
    extensions: ['PIPELINING', 'AUTH PLAIN'],
    onMessage: () => ({ reset: true }),
  });
});
afterAll(async () => {
  await Promise.all([ok.close(), silent.close(), dropper.close()]);
});

function resources() {
  const r = process.getActiveResourcesInfo();
  return {
    tcp: r.filter((x) => x === 'TCPSocketWrap').length,
    timers: r.filter((x) => x === 'Timeout').length,
  };
}

/** Wait until the server side saw every connection close, then count what is still alive. */
async function settled(srvs: ScriptedServer[]) {
  await Promise.all(srvs.flatMap((s) => s.connections.map((c) => c.closed)));
  // A destroyed handle is released a loop turn or two later; allow that, but not more than 500 ms.
  for (let i = 0; i < 50 && resources().tcp > 0; i++) await new Promise((r) => setTimeout(r, 10));
  return resources();
}

describe('socket and timer cleanup', () => {
  const base = () => ({ host: 'localhost', ca: TEST_CA, auth });
  const cases: [string, () => Promise<unknown>][] = [
    ['sendMail success', () => sendMail({ ...base(), port: ok.port }, msg)],
    ['verify', () => verify({ ...base(), port: ok.port })],
    ['sendBatch', () => sendBatch({ ...base(), port: ok.port }, [msg, msg])],
    [
      'sendMail reply timeout',
      () => sendMail({ ...base(), port: silent.port, timeouts: { data: 200 } }, msg),
    ],
    ['sendMail deadline', () => sendMail({ ...base(), port: silent.port, deadline: Date.now() + 300 }, msg)],
    ['sendMail connection reset', () => sendMail({ ...base(), port: dropper.port }, msg)],
    [
      'SmtpClient send + close',
      async () => {
        const c = new SmtpClient({ ...base(), port: ok.port });
        await c.send(msg);
        await c.send(msg);
        await c.close();
      },
    ],
  ];
  for (const [name, run] of cases) {
    it(`${name}: no socket or timer left`, async () => {
      const before = resources();
      await run().catch(() => {});
      const after = await settled([ok, silent, dropper]);
      expect(after.tcp).toBe(0);
      expect(after.timers).toBeLessThanOrEqual(before.timers);
    });
  }
});

/**
 * A TCP connect that never completes: a listener (python3, it never accepts) with a backlog of 0 whose queue is
 * already full, so Linux drops further SYNs and the client's connect stays pending.
 */
async function blackhole(): Promise<{ port: number; stop(): void }> {
  const py: ChildProcess = spawn(
    requireTool('python3'),
    [
      '-c',
      "import socket,sys\ns=socket.socket();s.bind(('127.0.0.1',0));s.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()",
    ],
    { stdio: ['pipe', 'pipe', 'ignore'] },
  );
  const port = await new Promise<number>((resolve) =>
    py.stdout!.once('data', (d) => resolve(Number(String(d)))),
  );
  const { connect } = await import('node:net');
  const filler = connect({ host: '127.0.0.1', port });
  filler.on('error', () => {});
  await new Promise((r) => filler.once('connect', r));
  return {
    port,
    stop: () => {
      filler.destroy();
      py.stdin!.end();
      py.kill();
    },
  };
}

describe('abort during a TCP connect that hangs', () => {
  it('ends at once with kind aborted, and leaves no socket or timer behind (the connect timeout was 10 s)', async () => {
    const hole = await blackhole();
    try {
      const before = resources();
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      const e = await sendMail({ host: '127.0.0.1', port: hole.port, signal: ac.signal }, msg).catch(
        (x) => x,
      );
      expect(e).toBeInstanceOf(SmtpError);
      // kind 'aborted' (not 'timeout'): the abort ended the connect, the 10 s connect timeout did not.
      expect(e).toMatchObject({ phase: 'connect', kind: 'aborted', transient: true, roundTrips: 0 });
      await new Promise((r) => setTimeout(r, 50));
      const after = resources();
      expect(after.timers).toBeLessThanOrEqual(before.timers);
      expect(after.tcp).toBeLessThanOrEqual(before.tcp);
    } finally {
      hole.stop();
    }
  });
});
