/** sendBatch accounting over a scripted server: failures inside pipelined groups land on the right message. */
import { describe, expect, it } from 'vitest';
import { sendBatch } from '../../functions/smtp/index.ts';
import { AUTH as auth, numbered } from '../support/fixtures.ts';
import { PIPELINED as P, PIPELINED_CHUNKING as PC, useScriptedServers } from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

const msg = (n: number, to = `r${n}@example.com`) => numbered(n, to);

const scripted = useScriptedServers();

/** A server that, like RFC 3030 asks, discards a pipelined BDAT after the transaction failed. */
function rfc3030Server(extensions: string[]) {
  let open = false;
  let rcpts = 0;
  return scripted.start({
    extensions,
    onCommand: (c) => {
      if (c.startsWith('MAIL')) {
        if (open) return { reply: '503 5.5.1 nested MAIL\r\n' };
        open = true;
        rcpts = 0;
        return undefined;
      }
      if (c.startsWith('RCPT')) {
        if (c.includes('<bad')) return { reply: '550 5.1.1 no such user\r\n' };
        rcpts++;
        return undefined;
      }
      if (c === 'RSET') open = false;
      if (c === 'DATA' && rcpts === 0) return { reply: '554 5.5.1 no valid recipients\r\n' };
      return undefined;
    },
    onMessage: () => {
      const ok = rcpts > 0;
      open = false;
      return ok ? undefined : { reply: '554 5.5.1 no valid recipients\r\n' };
    },
  });
}

describe('sendBatch', () => {
  it('CHUNKING: a transaction whose RCPTs all fail does not poison the next one (RSET between)', async () => {
    const srv = await rfc3030Server(PC);
    const out = await sendBatch({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, [
      msg(1),
      msg(2, 'bad@example.com'),
      msg(3),
      msg(4),
    ]);
    expect(out.results.map((r) => r.ok)).toEqual([true, false, true, true]);
    const failed = out.results[1]!;
    expect(!failed.ok && failed.error).toMatchObject({ phase: 'rcpt', code: 550, delivery: 'not-sent' });
    expect(srv.messages.map((m) => m.toString().split('\r\n')[0])).toEqual([
      'Subject: m1',
      'Subject: m2', // received by the server, refused with 554 (no recipients): not delivered
      'Subject: m3',
      'Subject: m4',
    ]);
    // ready in 6, then every transaction in one write
    expect(out.roundTrips).toBe(7);
  });

  it('PIPELINING: 1 round trip per message; RSET after a failed transaction', async () => {
    const srv = await rfc3030Server(P);
    const out = await sendBatch({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, [
      msg(1),
      msg(2, 'bad@example.com'),
      msg(3),
    ]);
    expect(out.results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(srv.messages).toHaveLength(2);
    expect(srv.connections[0]!.commands).toContain('RSET');
  });

  it('connection dies mid-batch: started → unknown, not started → not-sent', async () => {
    let n = 0;
    const srv = await scripted.start({
      extensions: P,
      onMessage: () => (++n === 2 ? { close: true } : undefined),
    });
    const out = await sendBatch({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, [
      msg(1),
      msg(2),
      msg(3),
    ]);
    expect(out.results[0]!.ok).toBe(true);
    const [, b, c] = out.results;
    expect(!b!.ok && b!.error.delivery).toBe('unknown');
    expect(!c!.ok && c!.error.delivery).toBe('not-sent');
  });

  it('bad items fail alone; a failed connect fails every item without throwing', async () => {
    const srv = await scripted.start({ extensions: PC });
    const out = await sendBatch({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, [
      msg(1),
      { ...msg(2), envelope: { from: 'a@example.com', to: ['x@example.com\r\nRSET'] } },
    ]);
    expect(out.results.map((r) => r.ok)).toEqual([true, false]);
    const port = srv.port;
    await srv.close();
    const dead = await sendBatch({ host: '127.0.0.1', port, ca: TEST_CA, auth }, [msg(1), msg(2)]);
    expect(dead.results.map((r) => !r.ok && r.error.phase)).toEqual(['connect', 'connect']);
  });
});
