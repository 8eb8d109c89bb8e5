/** SmtpClient warm-session reuse and its faults: every second send succeeds exactly once or says `unknown`. */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { SmtpClient, SmtpError } from '../../functions/smtp/index.ts';
import { AUTH as auth, numbered as msg } from '../support/fixtures.ts';
import {
  type ScriptedServer,
  type ScriptedServerOptions,
  useScriptedServers,
} from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

const PC = ['PIPELINING', 'CHUNKING', 'ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN'];

const scripted = useScriptedServers();

async function setup(o: ScriptedServerOptions = {}, extra: Record<string, unknown> = {}) {
  const srv = await scripted.start({ extensions: PC, ...o });
  const client = scripted.closes(
    new SmtpClient({
      host: 'localhost',
      port: srv.port,
      ca: TEST_CA,
      auth,
      transcript: true,
      ...extra,
    }),
  );
  const first = await client.send(msg(1));
  expect(first.reused).toBe(false);
  return { srv, client };
}

const bodies = (s: ScriptedServer) => s.messages.map((m) => m.toString().split('\r\n')[0]);

describe('warm reuse: the idle session died', () => {
  for (const [name, kill] of [
    [
      'closed with 421',
      (s: ScriptedServer) => {
        s.connections[0]!.write('421 4.4.2 idle timeout, closing\r\n');
        s.connections[0]!.end();
      },
    ],
    ['closed silently (FIN)', (s: ScriptedServer) => s.connections[0]!.end()],
    ['reset (RST)', (s: ScriptedServer) => s.connections[0]!.reset()],
  ] as const) {
    it(`${name} → the next send reconnects and delivers exactly once`, async () => {
      const { srv, client } = await setup();
      kill(srv);
      await srv.connections[0]!.closed;
      await sleep(20);
      const second = await client.send(msg(2));
      expect(second.reused).toBe(false);
      expect(srv.connections).toHaveLength(2);
      expect(bodies(srv)).toEqual(['Subject: m1', 'Subject: m2']);
    });
  }

  it('dies at the RSET of the reused session → transparent reconnect, delivered exactly once', async () => {
    let rsets = 0;
    const { srv, client } = await setup({
      onCommand: (c) =>
        c === 'RSET' && ++rsets === 1 ? { reply: '421 4.4.2 closing\r\n', close: true } : undefined,
    });
    const second = await client.send(msg(2));
    expect(second.response.code).toBe(250);
    expect(second.reused).toBe(false);
    expect(srv.connections).toHaveLength(2);
    expect(bodies(srv)).toEqual(['Subject: m1', 'Subject: m2']);
    expect(second.transcript!.some((l) => /reconnecting/.test(l.line))).toBe(true);
  });

  it('dies after BDAT LAST was written → SmtpError unknown, never resent', async () => {
    let n = 0;
    const { srv, client } = await setup({ onMessage: () => (++n === 2 ? { reset: true } : undefined) });
    const e = await client.send(msg(2)).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(SmtpError);
    expect(e).toMatchObject({ delivery: 'unknown', phase: 'data', transient: true });
    expect(srv.connections).toHaveLength(1);
    // and the client recovers for the next message with a new session
    const third = await client.send(msg(3));
    expect(third.reused).toBe(false);
    expect(srv.connections).toHaveLength(2);
  });
});

describe('warm reuse: behaviour', () => {
  it('the kept session is unref’d (never keeps the event loop alive) and closed by close()', async () => {
    const { srv, client } = await setup();
    srv.connections[0]!.unref();
    const tcp = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    expect(tcp()).toBe(0);
    await client.close();
    await srv.connections[0]!.closed;
    expect(srv.connections[0]!.commands.at(-1)).toBe('QUIT');
  });

  it('reuse: false → QUIT after every send', async () => {
    const { srv, client } = await setup({}, { reuse: false });
    const second = await client.send(msg(2));
    expect(second.reused).toBe(false);
    await srv.connections[1]!.closed;
    expect(srv.connections.map((c) => c.commands.at(-1))).toEqual(['QUIT', 'QUIT']);
  });

  it('idleTimeoutMs closes the kept session with QUIT', async () => {
    const { srv } = await setup({}, { idleTimeoutMs: 100 });
    await srv.connections[0]!.closed;
    expect(srv.connections[0]!.commands.at(-1)).toBe('QUIT');
  });

  it('batch over a kept session: 3 messages, one write (P + C)', async () => {
    const { srv, client } = await setup();
    const out = await client.sendBatch([msg(2), msg(3), msg(4)]);
    expect(out.reused).toBe(true);
    expect(out.roundTrips).toBe(1);
    expect(out.results.every((r) => r.ok)).toBe(true);
    expect(bodies(srv)).toEqual(['Subject: m1', 'Subject: m2', 'Subject: m3', 'Subject: m4']);
  });

  it('concurrent sends are serialised over the one session', async () => {
    const { srv, client } = await setup();
    const outs = await Promise.all([client.send(msg(2)), client.send(msg(3))]);
    expect(outs.map((o) => o.reused)).toEqual([true, true]);
    expect(srv.connections).toHaveLength(1);
    expect(bodies(srv)).toEqual(['Subject: m1', 'Subject: m2', 'Subject: m3']);
  });
});
