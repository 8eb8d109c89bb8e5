/**
 * A message that needs SMTPUTF8 may carry a form for servers without it (`withoutSmtpUtf8`): the choice is made
 * after EHLO in the same session, so the round trips are those of any one message (counted by the client and,
 * independently, by the scripted server).
 */
import { describe, expect, it } from 'vitest';
import { sendMail } from '../../functions/smtp/index.ts';
import { useScriptedServers } from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const auth = { username: 'u', password: 'p' };
const P = ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN'];

const msg = () => ({
  envelope: { from: 'a@example.com', to: ['b@example.com'] },
  content: enc('Reply-To: <jürgen@example.com>\r\nSubject: utf8\r\n\r\nwith\r\n'),
  info: { smtpUtf8: true },
  withoutSmtpUtf8: { content: enc('Subject: ascii\r\n\r\nwithout\r\n'), info: { smtpUtf8: false } },
});

const scripted = useScriptedServers();

describe('withoutSmtpUtf8', () => {
  it('server with SMTPUTF8: the message itself, MAIL … SMTPUTF8, 8 round trips', async () => {
    const srv = await scripted.start({ extensions: [...P, 'SMTPUTF8'] });
    const out = await sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, msg());
    await srv.connections[0]!.closed;
    expect(out.withoutSmtpUtf8).toBeUndefined();
    expect(srv.messages.map((m) => m.toString('utf8'))).toEqual([
      'Reply-To: <jürgen@example.com>\r\nSubject: utf8\r\n\r\nwith\r\n',
    ]);
    expect(srv.connections[0]!.commands.find((c) => c.startsWith('MAIL'))).toMatch(/ SMTPUTF8$/);
    expect([out.roundTrips, srv.connections[0]!.roundTrips]).toEqual([8, 8]);
  });

  it('server without SMTPUTF8: the other form goes instead, in the same 8 round trips, and the result says so', async () => {
    const srv = await scripted.start({ extensions: P });
    const out = await sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, msg());
    await srv.connections[0]!.closed;
    expect(out.withoutSmtpUtf8).toBe(true);
    expect(srv.messages.map((m) => m.toString('utf8'))).toEqual(['Subject: ascii\r\n\r\nwithout\r\n']);
    expect(srv.connections[0]!.commands.find((c) => c.startsWith('MAIL'))).not.toMatch(/SMTPUTF8/);
    expect([out.roundTrips, srv.connections[0]!.roundTrips]).toEqual([8, 8]);
  });

  it('without such a form, a server lacking SMTPUTF8 still refuses the message before MAIL (not-sent)', async () => {
    const srv = await scripted.start({ extensions: P });
    const { withoutSmtpUtf8: _, ...only } = msg();
    const e = await sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, only).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toMatchObject({ phase: 'mail', kind: 'usage', delivery: 'not-sent' });
    expect(srv.messages).toHaveLength(0);
  });
});
