/**
 * Round trips to the floor (RFC 2920 + RFC 3030), counted twice: by the client (`outcome.roundTrips`) and,
 * independently, by the scripted server (TCP + TLS handshakes + greeting + client turns).
 */
import { describe, expect, it } from 'vitest';
import { SmtpClient, sendMail } from '../../functions/smtp/index.ts';
import { AUTH as auth, outgoing } from '../support/fixtures.ts';
import { useScriptedServers } from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

/** With a line holding only a dot (dot-stuffed on the way). */
const msg = (n = 1) => outgoing('b@example.com', `Subject: m${n}\r\n\r\nbody ${n}\r\n.\r\n`);
const P = ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN'];
const PC = [...P, 'CHUNKING'];

const scripted = useScriptedServers();

describe('round trips', () => {
  it('STARTTLS + AUTH PLAIN + 1 message with PIPELINING: 8', async () => {
    const srv = await scripted.start({ extensions: P });
    const out = await sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, msg());
    await srv.connections[0]!.closed;
    expect(out.roundTrips).toBe(8);
    expect(srv.connections[0]!.roundTrips).toBe(8);
    expect(srv.messages).toHaveLength(1);
    // QUIT went in the same write as the body.
    expect(srv.connections[0]!.commands.slice(-1)).toEqual(['QUIT']);
  });

  it('STARTTLS + AUTH PLAIN + 1 message with PIPELINING + CHUNKING: 7, one write after EHLO', async () => {
    const srv = await scripted.start({ extensions: PC });
    const out = await sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, msg());
    await srv.connections[0]!.closed;
    expect(out.roundTrips).toBe(7);
    expect(srv.connections[0]!.roundTrips).toBe(7);
    expect(srv.connections[0]!.commands.slice(-5).map((c) => c.split(' ')[0])).toEqual([
      'AUTH',
      'MAIL',
      'RCPT',
      'BDAT',
      'QUIT',
    ]);
    expect(srv.messages[0]!.toString()).toBe('Subject: m1\r\n\r\nbody 1\r\n.\r\n');
  });

  it('implicit TLS + PIPELINING + CHUNKING: 5', async () => {
    const srv = await scripted.start({ extensions: PC, implicitTls: true });
    const out = await sendMail(
      { host: '127.0.0.1', port: srv.port, security: 'tls', ca: TEST_CA, auth },
      msg(),
    );
    await srv.connections[0]!.closed;
    expect(out.roundTrips).toBe(5);
    expect(srv.connections[0]!.roundTrips).toBe(5);
    expect(out.tls?.protocol).toMatch(/TLSv1\.[23]/);
  });

  it('without PIPELINING: one command per wait (11 + the lone QUIT on the server side)', async () => {
    const srv = await scripted.start({ extensions: ['8BITMIME', 'AUTH PLAIN LOGIN'] });
    const out = await sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, msg());
    await srv.connections[0]!.closed;
    expect(out.roundTrips).toBe(11);
    expect(srv.connections[0]!.roundTrips).toBe(12);
  });

  it('warm reuse with PIPELINING + CHUNKING: 1 round trip [RSET, MAIL, RCPT, BDAT LAST]', async () => {
    const srv = await scripted.start({ extensions: PC });
    const client = scripted.closes(new SmtpClient({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }));
    const first = await client.send(msg(1));
    const second = await client.send(msg(2));
    expect(first).toMatchObject({ reused: false, roundTrips: 7 });
    expect(second).toMatchObject({ reused: true, roundTrips: 1 });
    expect(srv.connections).toHaveLength(1);
    const c = srv.connections[0]!;
    expect(c.roundTrips).toBe(8);
    expect(c.commands.slice(-4).map((x) => x.split(' ')[0])).toEqual(['RSET', 'MAIL', 'RCPT', 'BDAT']);
    expect(srv.messages).toHaveLength(2);
  });

  it('warm reuse with PIPELINING only: 2 round trips', async () => {
    const srv = await scripted.start({ extensions: P });
    const client = scripted.closes(new SmtpClient({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }));
    const first = await client.send(msg(1));
    const second = await client.send(msg(2));
    expect(first).toMatchObject({ reused: false, roundTrips: 8 });
    expect(second).toMatchObject({ reused: true, roundTrips: 2 });
    expect(srv.connections[0]!.roundTrips).toBe(10);
    expect(srv.messages.map((m) => m.toString())).toEqual([
      'Subject: m1\r\n\r\nbody 1\r\n.\r\n',
      'Subject: m2\r\n\r\nbody 2\r\n.\r\n',
    ]);
  });
});
