/**
 * Delivery verdicts when the connection drops right after message 1's end of data (reported by the handler
 * author: message 2, never started, came back `unknown`). A message whose last byte was never written is
 * `not-sent`; only one whose last byte WAS written (BDAT LAST pipelined in the same write) is `unknown`.
 * Checked for `SmtpClient.sendBatch` (fresh and kept session), the `sendBatch` function and `sendMail`.
 */
import { describe, expect, it } from 'vitest';
import {
  type BatchItemResult,
  SmtpClient,
  SmtpError,
  sendBatch,
  sendMail,
} from '../../functions/smtp/index.ts';
import { makeReply } from '../../functions/smtp/reply.ts';
import { Session } from '../../functions/smtp/session.ts';
import { endsData, type WrittenItem } from '../../functions/smtp/transaction.ts';
import type { Reply } from '../../functions/smtp/types.ts';
import { AUTH as auth, numbered } from '../support/fixtures.ts';
import { type ScriptAction, type ScriptedServer, useScriptedServers } from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

const msg = (n: number) => numbered(n, `r${n}@example.com`);
const NONE = ['ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN'];
const P = ['PIPELINING', ...NONE];
const PC = [...P, 'CHUNKING'];

const scripted = useScriptedServers();
let srv: ScriptedServer | undefined;

type Drop = 'close' | 'reset' | 'reply-then-close';
const dropAction = (drop: Drop): ScriptAction =>
  drop === 'reset'
    ? { reset: true }
    : drop === 'close'
      ? { close: true }
      : { reply: '250 2.0.0 Ok: queued as Q1\r\n', close: true };

/** A server that drops the connection as soon as it has read the end of the first message. */
async function dropAfterFirstMessage(extensions: string[], drop: Drop) {
  srv = await scripted.start({
    extensions,
    onMessage: (_m, conn) => (conn.messages.length === 1 ? dropAction(drop) : undefined),
  });
  return { host: 'localhost', port: srv.port, ca: TEST_CA, auth, timeouts: { reply: 5000, data: 5000 } };
}

const verdict = (r: BatchItemResult) => (r.ok ? 'accepted' : r.error.delivery);
const receivedText = () => Buffer.concat(srv!.connections.flatMap((c) => c.received)).toString('latin1');

describe('connection dropped right after message 1 ends', () => {
  for (const drop of ['close', 'reset'] as const) {
    it(`no PIPELINING (${drop}): 1 unknown, 2 not-sent (SmtpClient.sendBatch)`, async () => {
      const opts = await dropAfterFirstMessage(NONE, drop);
      const client = scripted.closes(new SmtpClient(opts));
      const out = await client.sendBatch([msg(1), msg(2)]);
      expect(out.results.map(verdict)).toEqual(['unknown', 'not-sent']);
      const second = out.results[1]!;
      expect(!second.ok && second.error).toMatchObject({ kind: 'network', transient: true });
      expect(receivedText()).not.toContain('r2@example.com'); // message 2 never started
    });
  }

  it('no PIPELINING, reply then close: 1 accepted, 2 not-sent', async () => {
    const opts = await dropAfterFirstMessage(NONE, 'reply-then-close');
    const client = scripted.closes(new SmtpClient(opts));
    const out = await client.sendBatch([msg(1), msg(2)]);
    expect(out.results.map(verdict)).toEqual(['accepted', 'not-sent']);
  });

  it('PIPELINING: message 2 only got MAIL/RCPT/DATA (no body): not-sent', async () => {
    const opts = await dropAfterFirstMessage(P, 'close');
    const client = scripted.closes(new SmtpClient(opts));
    const out = await client.sendBatch([msg(1), msg(2)]);
    expect(out.results.map(verdict)).toEqual(['unknown', 'not-sent']);
    expect(receivedText()).toContain('RCPT TO:<r2@example.com>'); // pipelined after the dot …
    expect(receivedText()).not.toContain('body 2'); // … but its body was never written
  });

  it('PIPELINING + CHUNKING: message 2 BDAT LAST in the same write → its last byte was written: unknown', async () => {
    const opts = await dropAfterFirstMessage(PC, 'close');
    const client = scripted.closes(new SmtpClient(opts));
    const out = await client.sendBatch([msg(1), msg(2)]);
    expect(out.results.map(verdict)).toEqual(['unknown', 'unknown']);
    expect(receivedText()).toContain('body 2');
    for (const r of out.results) expect(!r.ok && r.error.phase).toBe('data');
  });

  it('a kept session (SmtpClient reuse): 1 unknown, never resent; 2 was not started, so it may go on a new connection', async () => {
    srv = await scripted.start({
      extensions: NONE,
      onMessage: (_m, conn) => (conn.index === 0 && conn.messages.length === 2 ? { close: true } : undefined),
    });
    const client = scripted.closes(new SmtpClient({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }));
    await client.send(msg(0));
    const out = await client.sendBatch([msg(1), msg(2)]);
    expect(out.results.map(verdict)).toEqual(['unknown', 'accepted']);
    // message 1 went once (on the kept session), message 2 once (on the new one): no duplicate
    expect(srv.connections.map((c) => c.messages.length)).toEqual([2, 1]);
    expect(srv.connections[1]!.messages[0]!.toString()).toContain('body 2');
  });

  it('the sendBatch function: same verdicts', async () => {
    for (const [ext, want] of [
      [NONE, ['unknown', 'not-sent']],
      [P, ['unknown', 'not-sent']],
      [PC, ['unknown', 'unknown']],
    ] as const) {
      const opts = await dropAfterFirstMessage(ext, 'close');
      const out = await sendBatch(opts, [msg(1), msg(2)]);
      expect(out.results.map(verdict)).toEqual(want);
      await srv!.close();
    }
  });

  it('sendMail: a drop after the final dot is unknown (phase data), a drop with the reply given is success', async () => {
    for (const ext of [NONE, PC]) {
      const opts = await dropAfterFirstMessage(ext, 'close');
      const e = await sendMail(opts, msg(1)).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(SmtpError);
      expect(e).toMatchObject({ phase: 'data', delivery: 'unknown', transient: true });
      await srv!.close();
    }
    const opts = await dropAfterFirstMessage(NONE, 'reply-then-close');
    const out = await sendMail(opts, msg(1));
    expect(out.queueId).toBe('Q1');
  });
});

describe('a group the driver could not write', () => {
  it('a message end planned but never written (connection already gone, deadline passed) is not-sent', () => {
    const s = new Session({
      security: 'tls',
      clientName: 'client.example.com',
      plaintextAuthAllowed: false,
      tls: true,
    });
    const txs = [s.enqueue(msg(1)), s.enqueue(msg(2))];
    const replies: Record<string, Reply> = {
      greeting: makeReply(220, ['mx ESMTP']),
      EHLO: makeReply(250, ['mx', 'PIPELINING', 'CHUNKING']),
    };
    let write: WrittenItem[] | undefined;
    for (let n = 0; n < 10 && !write; n++) {
      const a = s.next();
      if (a.type === 'read') s.onReply(replies[a.item.kind === 'greeting' ? 'greeting' : 'EHLO']!);
      else if (a.type === 'write' && a.items.some((i) => i.kind === 'bdat')) write = a.items;
    }
    expect(write?.filter(endsData)).toHaveLength(2); // both BDAT LAST planned in one group
    s.notWritten(write!);
    s.abort(
      new SmtpError('connection closed by the server', { phase: 'mail', kind: 'network', transient: true }),
    );
    expect(txs.map((t) => t.error?.delivery)).toEqual(['not-sent', 'not-sent']);
  });
});
