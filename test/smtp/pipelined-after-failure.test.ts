/**
 * A session error (AUTH refused) while MAIL, RCPT and DATA/BDAT were pipelined behind `AUTH PLAIN <ir>`, against a
 * server that goes on and accepts the transaction anyway (a relay that also trusts the client's network):
 * - DATA: the client must not answer the 354 with `.` (that would deliver an EMPTY message): it closes instead,
 *   and the message is `not-sent`;
 * - BDAT: the message was already written; when the server accepts it the verdict is `accepted` (never resent),
 *   when no reply comes it is `unknown`.
 */
import { describe, expect, it } from 'vitest';
import { SmtpError, sendMail } from '../../functions/smtp/index.ts';
import { AUTH as auth, outgoing, rejection } from '../support/fixtures.ts';
import { PIPELINED as P, PIPELINED_CHUNKING as PC, useScriptedServers } from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

const msg = outgoing();

const scripted = useScriptedServers();

/** AUTH is refused, everything else accepted (the scripted server's default). */
const refuseAuth = (extensions: string[], onMessage?: () => { silent: true } | undefined) =>
  scripted.start({
    extensions,
    onCommand: (c) => (c.startsWith('AUTH') ? { reply: '535 5.7.8 bad credentials\r\n' } : undefined),
    ...(onMessage ? { onMessage } : {}),
  });

const failure = (p: Promise<unknown>) => rejection(p, SmtpError);

describe('transaction pipelined behind a refused AUTH', () => {
  it('DATA: the 354 is not answered with `.` (no empty message is delivered); not-sent', async () => {
    const srv = await refuseAuth(P);
    const e = await failure(
      sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth, timeouts: { reply: 5000 } }, msg),
    );
    expect(e).toMatchObject({ phase: 'auth', code: 535, delivery: 'not-sent' });
    await srv.connections[0]!.closed;
    expect(srv.messages).toHaveLength(0);
    expect(srv.connections[0]!.commands).toContain('DATA');
  });

  it('BDAT: the server accepted the message → delivery accepted (the error is still the 535)', async () => {
    const srv = await refuseAuth(PC);
    const e = await failure(sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, msg));
    expect(srv.messages).toHaveLength(1);
    expect(e).toMatchObject({ phase: 'data', code: 535, delivery: 'accepted' });
  });

  it('BDAT: no reply to the chunk → unknown', async () => {
    const srv = await refuseAuth(PC, () => ({ silent: true }));
    const e = await failure(
      sendMail(
        { host: 'localhost', port: srv.port, ca: TEST_CA, auth, timeouts: { reply: 300, data: 300 } },
        msg,
      ),
    );
    expect(srv.messages).toHaveLength(1);
    expect(e).toMatchObject({ code: 535, delivery: 'unknown' });
  });

  it('a server that refuses MAIL after the failed AUTH: the error is the 535, not-sent', async () => {
    const srv = await scripted.start({
      extensions: PC,
      onCommand: (c) =>
        c.startsWith('AUTH')
          ? { reply: '535 5.7.8 bad credentials\r\n' }
          : /^(MAIL|RCPT|BDAT)/.test(c)
            ? { reply: '530 5.7.0 authentication required\r\n' }
            : undefined,
    });
    const e = await failure(sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, msg));
    expect(e).toMatchObject({ phase: 'auth', code: 535, delivery: 'not-sent' });
  });
});

describe('timeouts.data', () => {
  it('is the wait for the reply to the final dot, even when shorter than timeouts.reply', async () => {
    const srv = await scripted.start({ extensions: P, onMessage: () => ({ silent: true }) });
    const e = await failure(
      sendMail(
        { host: 'localhost', port: srv.port, ca: TEST_CA, auth, timeouts: { reply: 20_000, data: 300 } },
        msg,
      ),
    );
    expect(e).toMatchObject({ phase: 'data', kind: 'timeout', delivery: 'unknown' });
    expect(e.message).toBe('no reply to . within 300 ms'); // the data timeout, not the 20 s reply timeout
  });
});
