/** Faults from a scripted server: each ends within its deadline with the right phase, transient and delivery. */
import { describe, expect, it } from 'vitest';
import { SmtpError, sendMail, verify } from '../../functions/smtp/index.ts';
import { AUTH as auth, outgoing as msg, rejection } from '../support/fixtures.ts';
import {
  PIPELINED as P,
  PIPELINED_CHUNKING as PC,
  type ScriptedServer,
  type ScriptedServerOptions,
  useScriptedServers,
} from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

const scripted = useScriptedServers();
let srv: ScriptedServer | undefined;

async function fail(o: ScriptedServerOptions, extra: Record<string, unknown> = {}, m = msg()) {
  srv = await scripted.start(o);
  const e = await rejection(
    sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth, ...extra }, m),
    SmtpError,
  );
  return { e };
}

describe('faults', () => {
  it('silent greeting → greeting timeout, transient, not-sent', async () => {
    const { e } = await fail({ greeting: null }, { timeouts: { greeting: 300 } });
    expect(e).toMatchObject({ phase: 'greeting', kind: 'timeout', transient: true, delivery: 'not-sent' });
    expect(e.message).toBe('no greeting within 300 ms'); // the phase timeout ended it, not a default
  });

  it('silent greeting → the overall deadline wins when it is shorter', async () => {
    const { e } = await fail({ greeting: null }, { deadline: Date.now() + 400 });
    expect(e).toMatchObject({ phase: 'greeting', kind: 'timeout', transient: true });
    expect(e.message).toBe('deadline exceeded while waiting for greeting');
  });

  it('abort signal ends the wait', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200).unref();
    const { e } = await fail({ greeting: null }, { signal: ac.signal });
    expect(e).toMatchObject({ phase: 'greeting', kind: 'aborted', delivery: 'not-sent' });
  });

  it('421 greeting → transient, phase greeting', async () => {
    const { e } = await fail({ greeting: '421 4.3.2 too busy\r\n' });
    expect(e).toMatchObject({ phase: 'greeting', code: 421, transient: true });
  });

  it('421 mid-session (to MAIL) → transient, phase mail, not-sent', async () => {
    const { e } = await fail({
      extensions: P,
      onCommand: (c) =>
        c.startsWith('MAIL') ? { reply: '421 4.3.2 shutting down\r\n', close: true } : undefined,
    });
    expect(e).toMatchObject({
      phase: 'mail',
      code: 421,
      enhancedCode: '4.3.2',
      transient: true,
      delivery: 'not-sent',
    });
  });

  it('connection dropped before the final dot → not-sent', async () => {
    const { e } = await fail({
      extensions: P,
      onCommand: (c) => (c === 'DATA' ? { close: true } : undefined),
    });
    expect(e).toMatchObject({ phase: 'data', kind: 'network', transient: true, delivery: 'not-sent' });
  });

  it('connection dropped after the final dot → unknown (DATA)', async () => {
    const { e } = await fail({ extensions: P, onMessage: () => ({ close: true }) });
    expect(e).toMatchObject({ phase: 'data', kind: 'network', transient: true, delivery: 'unknown' });
    expect(srv!.messages).toHaveLength(1);
  });

  it('connection reset after BDAT LAST → unknown (CHUNKING)', async () => {
    const { e } = await fail({ extensions: PC, onMessage: () => ({ reset: true }) });
    expect(e).toMatchObject({ phase: 'data', delivery: 'unknown' });
  });

  it('4xx on every RCPT → phase rcpt, transient; 5xx → permanent', async () => {
    const r4 = await fail({
      extensions: P,
      onCommand: (c) =>
        c.startsWith('RCPT')
          ? { reply: '451 4.7.1 greylisted\r\n' }
          : c === 'DATA'
            ? { reply: '554 5.5.1 no valid recipients\r\n' }
            : undefined,
    });
    expect(r4.e).toMatchObject({
      phase: 'rcpt',
      code: 451,
      enhancedCode: '4.7.1',
      transient: true,
      delivery: 'not-sent',
    });
    await srv!.close();
    const r5 = await fail({
      extensions: PC,
      onCommand: (c) => (c.startsWith('RCPT') ? { reply: '550 5.1.1 no such user\r\n' } : undefined),
      onMessage: () => ({ reply: '554 5.5.1 no valid recipients\r\n' }),
    });
    expect(r5.e).toMatchObject({ phase: 'rcpt', code: 550, transient: false, delivery: 'not-sent' });
  });

  it('without PIPELINING, every RCPT refused → DATA is never sent; phase rcpt, not-sent', async () => {
    const { e } = await fail(
      {
        extensions: ['ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN'],
        onCommand: (c) => (c.startsWith('RCPT') ? { reply: '550 5.1.1 no such user\r\n' } : undefined),
      },
      {},
      msg(['b@example.com', 'c@example.com']),
    );
    expect(e).toMatchObject({ phase: 'rcpt', code: 550, transient: false, delivery: 'not-sent' });
    await srv!.connections[0]!.closed;
    expect(srv!.connections[0]!.commands.slice(-4).map((c) => c.split(':')[0])).toEqual([
      'MAIL FROM',
      'RCPT TO',
      'RCPT TO',
      'QUIT',
    ]);
  });

  it('535 to a pipelined AUTH PLAIN → phase auth (the 530s that follow are not the story)', async () => {
    const { e } = await fail({
      extensions: P,
      onCommand: (c) =>
        c.startsWith('AUTH')
          ? { reply: '535 5.7.8 bad credentials\r\n' }
          : /^(MAIL|RCPT|DATA)/.test(c)
            ? { reply: '530 5.7.0 authentication required\r\n' }
            : undefined,
    });
    expect(e).toMatchObject({
      phase: 'auth',
      code: 535,
      enhancedCode: '5.7.8',
      transient: false,
      delivery: 'not-sent',
    });
    expect(e.command).toBe('AUTH PLAIN ***');
    expect(srv!.messages).toHaveLength(0);
  });

  it('message refused at the end of data → phase data, not-sent', async () => {
    const { e } = await fail({ extensions: P, onMessage: () => ({ reply: '552 5.3.4 too big\r\n' }) });
    expect(e).toMatchObject({ phase: 'data', code: 552, transient: false, delivery: 'not-sent' });
  });

  it('slow drip of the final reply past the deadline → timeout, unknown, within the deadline', async () => {
    const { e } = await fail(
      { extensions: PC, onMessage: () => ({ drip: '250 2.0.0 queued as X\r\n', everyMs: 150 }) },
      { deadline: Date.now() + 1500 },
    );
    expect(e).toMatchObject({ phase: 'data', kind: 'timeout', transient: true, delivery: 'unknown' });
    expect(e.message).toMatch(/^deadline exceeded while waiting for reply to BDAT/); // not the 30 s data timeout
  });

  it('abort while waiting for the final reply → aborted, unknown', async () => {
    const ac = new AbortController();
    const { e } = await fail(
      {
        extensions: PC,
        onMessage: () => {
          setTimeout(() => ac.abort(), 100).unref();
          return { silent: true };
        },
      },
      { signal: ac.signal },
    );
    expect(e).toMatchObject({ phase: 'data', kind: 'aborted', delivery: 'unknown' });
  });

  it('TLS handshake never answered → phase starttls timeout', async () => {
    const { e } = await fail(
      { onCommand: (c) => (c === 'STARTTLS' ? { reply: '220 Ready\r\n' } : undefined) },
      { timeouts: { connect: 300 } },
    );
    expect(e).toMatchObject({ phase: 'starttls', kind: 'timeout', transient: true, delivery: 'not-sent' });
    expect(e.message).toBe('no TLS handshake within 300 ms');
  });

  it('an endless reply is cut at 64 KiB (protocol error)', async () => {
    const big = `${'250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n'.repeat(1200)}250 end\r\n`;
    const { e } = await fail({ onCommand: (c) => (c.startsWith('EHLO') ? { reply: big } : undefined) });
    expect(e).toMatchObject({ phase: 'ehlo', kind: 'protocol', transient: false });
  });

  it('EHLO refused → phase ehlo', async () => {
    srv = await scripted.start({
      onCommand: (c) => (c.startsWith('EHLO') ? { reply: '554 5.7.1 go away\r\n' } : undefined),
    });
    await expect(verify({ host: 'localhost', port: srv.port, ca: TEST_CA })).rejects.toMatchObject({
      phase: 'ehlo',
      code: 554,
    });
  });

  it('XOAUTH2 error challenge is answered and reported as phase auth', async () => {
    const challenge = Buffer.from('{"status":"401","schemes":"bearer"}').toString('base64');
    const { e } = await fail(
      {
        extensions: ['PIPELINING', 'AUTH XOAUTH2 PLAIN'],
        onCommand: (c) =>
          c.startsWith('AUTH XOAUTH2')
            ? { reply: `334 ${challenge}\r\n` }
            : c === ''
              ? { reply: '535 5.7.8 Username and Password not accepted\r\n' }
              : undefined,
      },
      { auth: { username: 'me@example.com', accessToken: 'ya29.token' } },
    );
    expect(e).toMatchObject({ phase: 'auth', code: 535 });
    expect(e.serverText).toContain('401');
    expect(srv!.connections[0]!.commands.filter((c) => c === '')).toHaveLength(1);
  });

  it('connection refused → phase connect, transient', async () => {
    srv = await scripted.start();
    const port = srv.port;
    await srv.close();
    await expect(sendMail({ host: '127.0.0.1', port, ca: TEST_CA }, msg())).rejects.toMatchObject({
      phase: 'connect',
      kind: 'network',
      transient: true,
      delivery: 'not-sent',
    });
  });
});
