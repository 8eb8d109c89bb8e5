/**
 * Only the reply to the final dot (or BDAT LAST) may say "accepted" (issue 12's two protocol defects), against a
 * scripted server whose bytes we choose:
 * - a server that never answers the final dot but answers the pipelined QUIT: the 221 is not the dot's reply,
 *   the message is `unknown`, never `accepted`;
 * - one read that holds a good reply followed by a malformed line: the good reply counts (here the dot's 250: the
 *   message is accepted, and the malformed line only ends the session afterwards).
 */
import { describe, expect, it } from 'vitest';
import { SmtpError, sendBatch, sendMail } from '../../functions/smtp/index.ts';
import { AUTH as auth, outgoing as msg, rejection } from '../support/fixtures.ts';
import { PIPELINED, PIPELINED_CHUNKING, useScriptedServers } from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

const scripted = useScriptedServers();

const failure = (p: Promise<unknown>) => rejection(p, SmtpError);

describe('the final reply', () => {
  for (const [name, extensions] of [
    ['DATA', PIPELINED],
    ['BDAT LAST', PIPELINED_CHUNKING],
  ] as const) {
    it(`no reply to ${name}, but a 221 to the pipelined QUIT → unknown, not accepted`, async () => {
      const srv = await scripted.start({ extensions, onMessage: () => ({ reply: '' }) });
      const e = await failure(
        sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth, timeouts: { data: 5000 } }, msg()),
      );
      expect(e).toMatchObject({ phase: 'data', delivery: 'unknown', code: 221 });
      // The server did read the message and the QUIT: the 221 answered the QUIT, not the end of data.
      expect(srv.messages).toHaveLength(1);
      expect(srv.connections[0]!.commands.at(-1)).toBe('QUIT');
    });
  }

  it('a 221 in place of the reply to MAIL (before any data was written) → not-sent', async () => {
    const srv = await scripted.start({
      extensions: ['ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN'],
      onCommand: (c) => (c.startsWith('MAIL') ? { reply: '221 2.0.0 Bye\r\n', close: true } : undefined),
    });
    const e = await failure(sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, msg()));
    expect(e).toMatchObject({ phase: 'mail', delivery: 'not-sent', code: 221, transient: true });
    expect(srv.messages).toHaveLength(0);
  });

  it('a good reply followed by a malformed line in the same read: the good reply counts', async () => {
    const srv = await scripted.start({
      extensions: PIPELINED,
      onMessage: () => ({ reply: '250 2.0.0 Ok: queued as GOOD1\r\nthis is not a reply\r\n' }),
    });
    const out = await sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, msg());
    expect(out.queueId).toBe('GOOD1');
    expect(out.accepted.map((r) => r.address)).toEqual(['b@example.com']);
  });

  it('in a batch, the replies before a malformed line settle their messages; the rest are not sent', async () => {
    let n = 0;
    const srv = await scripted.start({
      extensions: ['ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN'],
      onMessage: () => (++n === 1 ? { reply: '250 2.0.0 Ok: queued as ONE\r\nbogus\r\n' } : undefined),
    });
    const out = await sendBatch({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, [
      msg(),
      msg('c@example.com'),
    ]);
    expect(out.results[0]).toMatchObject({ ok: true, queueId: 'ONE' });
    expect(out.results[1]).toMatchObject({ ok: false, error: { kind: 'protocol', delivery: 'not-sent' } });
    expect(srv.messages).toHaveLength(1);
  });
});
