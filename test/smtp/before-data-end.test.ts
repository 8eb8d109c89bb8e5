/**
 * `OutgoingMessage.beforeDataEnd`: awaited just before the write that holds the message's last byte (the
 * idempotency marker's place), never earlier than needed, and a rejection sends nothing of that write.
 */
import { describe, expect, it } from 'vitest';
import { SmtpError, sendMail } from '../../functions/smtp/index.ts';
import { PIPELINED, PIPELINED_CHUNKING, useScriptedServers } from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

const scripted = useScriptedServers();
const auth = { username: 'u', password: 'p' };
const content = new TextEncoder().encode('Subject: s\r\nMessage-ID: <m1@example.com>\r\n\r\nbody\r\n');

/** Send one message whose hook is `hook`; resolves with what the client threw, if anything. */
function send(port: number, hook: () => Promise<void>): Promise<unknown> {
  return sendMail(
    { host: 'localhost', port, ca: TEST_CA, auth },
    { envelope: { from: 'a@example.com', to: ['b@example.com'] }, content, beforeDataEnd: hook },
  ).then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe('beforeDataEnd', () => {
  it('DATA: runs after the 354 and before the body and dot; the message waits for it', async () => {
    const srv = await scripted.start({ extensions: PIPELINED });
    let seen: string[] = [];
    let received = -1;
    const e = await send(srv.port, async () => {
      seen = [...srv.connections[0]!.commands];
      received = srv.connections[0]!.messages.length;
      await new Promise((r) => setTimeout(r, 50));
    });
    expect(e).toBeUndefined();
    expect(seen.at(-1)).toBe('DATA');
    expect(received).toBe(0);
    expect(srv.connections[0]!.messages).toHaveLength(1);
  });

  it('PIPELINING + CHUNKING: MAIL, RCPT and BDAT LAST are one write, so it runs before MAIL', async () => {
    const srv = await scripted.start({ extensions: PIPELINED_CHUNKING });
    let seen: string[] = [];
    const e = await send(srv.port, async () => {
      seen = [...srv.connections[0]!.commands];
    });
    expect(e).toBeUndefined();
    expect(seen.some((c) => c.startsWith('MAIL'))).toBe(false);
    expect(srv.connections[0]!.messages).toHaveLength(1);
  });

  it('a rejection: not-sent, nothing of the message arrives, the connection is dropped', async () => {
    const srv = await scripted.start({ extensions: PIPELINED });
    const cause = new Error('marker not written');
    const e = await send(srv.port, () => Promise.reject(cause));
    expect(e).toBeInstanceOf(SmtpError);
    expect(e).toMatchObject({
      kind: 'aborted',
      phase: 'data',
      delivery: 'not-sent',
      transient: false,
      cause,
    });
    await srv.connections[0]!.closed;
    expect(srv.connections[0]!.messages).toHaveLength(0);
    expect(Buffer.concat(srv.connections[0]!.received).toString()).not.toContain('body');
  });
});
