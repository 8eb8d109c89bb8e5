/**
 * Errors carry their operation's context: `roundTrips` so far (always) and the redacted transcript so far (with
 * `transcript: true`), so the CLI's `--transcript` and the Lambda's logs can show them on failure. `toJSON()`
 * has `roundTrips` but never the transcript (addresses) nor anything secret.
 */
import { describe, expect, it } from 'vitest';
import { SmtpClient, SmtpError, sendBatch, sendMail, verify } from '../../functions/smtp/index.ts';
import { outgoing, rejection } from '../support/fixtures.ts';
import { PIPELINED as P, useScriptedServers } from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

const msg = (to = 'b@example.com') => outgoing(to, 'Subject: s\r\n\r\nsecret body text\r\n');
const auth = { username: 'u', password: 'hunter2' };

const scripted = useScriptedServers();

const rejectRcpt = () =>
  scripted.start({
    extensions: P,
    onCommand: (c) => (c.startsWith('RCPT') ? { reply: '550 5.1.1 no such user\r\n' } : undefined),
  });
const lines = (e: SmtpError) => (e.transcript ?? []).map((l) => `${l.dir}: ${l.line}`);
const failure = (p: Promise<unknown>) => rejection(p, SmtpError);

describe('SmtpError context', () => {
  it('sendMail: round trips (as the server counts them) and the redacted transcript up to the failure', async () => {
    const srv = await rejectRcpt();
    const e = await failure(
      sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth, transcript: true }, msg()),
    );
    expect(e).toMatchObject({ phase: 'rcpt', code: 550, delivery: 'not-sent' });
    // TCP, greeting, EHLO, STARTTLS, TLS, EHLO, [AUTH MAIL RCPT DATA], [.] (the 354 forces the dot); the
    // server also counts the lone QUIT write after that, the client does not (nothing waits for it)
    expect(e.roundTrips).toBe(8);
    expect(srv.connections[0]!.roundTrips).toBe(9);
    const t = lines(e);
    expect(t).toContain('C: AUTH PLAIN ***');
    expect(t).toContain('C: RCPT TO:<b@example.com>');
    expect(t).toContain('S: 550 5.1.1 no such user');
    const text = JSON.stringify(e.transcript);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain(Buffer.from('\0u\0hunter2').toString('base64'));
    expect(text).not.toContain('secret body text');
    // toJSON: round trips in, transcript out
    const json = JSON.parse(JSON.stringify(e));
    expect(json.roundTrips).toBe(e.roundTrips);
    expect(json).not.toHaveProperty('transcript');
  });

  it('without transcript: true there is no transcript, but roundTrips is there', async () => {
    const srv = await rejectRcpt();
    const e = await failure(sendMail({ host: 'localhost', port: srv.port, ca: TEST_CA, auth }, msg()));
    expect(e.transcript).toBeUndefined();
    expect(e.roundTrips).toBe(8);
  });

  it('a refused connect and a bad option have roundTrips 0; a bad port is a usage SmtpError', async () => {
    const srv = await scripted.start();
    const port = srv.port;
    await srv.close();
    const refused = await failure(
      sendMail({ host: '127.0.0.1', port, ca: TEST_CA, auth, transcript: true }, msg()),
    );
    expect(refused).toMatchObject({ phase: 'connect', kind: 'network', roundTrips: 0, transcript: [] });
    const badName = await failure(sendMail({ host: '127.0.0.1', port, clientName: 'a b' }, msg()));
    expect(badName).toMatchObject({ kind: 'usage', roundTrips: 0 });
    const badPort = await failure(sendMail({ host: '127.0.0.1', port: 70000 }, msg()));
    expect(badPort).toMatchObject({ phase: 'connect', kind: 'usage', roundTrips: 0 });
  });

  it('verify: an AUTH failure carries round trips and transcript', async () => {
    const srv = await scripted.start({
      extensions: P,
      onCommand: (c) => (c.startsWith('AUTH') ? { reply: '535 5.7.8 bad credentials\r\n' } : undefined),
    });
    const e = await failure(
      verify({ host: 'localhost', port: srv.port, ca: TEST_CA, auth, transcript: true }),
    );
    expect(e).toMatchObject({ phase: 'auth', code: 535 });
    expect(e.roundTrips).toBe(srv.connections[0]!.roundTrips); // QUIT went with AUTH PLAIN
    expect(lines(e)).toContain('S: 535 5.7.8 bad credentials');
  });

  it('SmtpClient.send and batches: errors carry the operation’s round trips, not the kept session’s total', async () => {
    const srv = await scripted.start({
      extensions: P,
      onCommand: (c) => (c.includes('<bad@') ? { reply: '550 5.1.1 no such user\r\n' } : undefined),
    });
    const client = scripted.closes(
      new SmtpClient({ host: 'localhost', port: srv.port, ca: TEST_CA, auth, transcript: true }),
    );
    const first = await client.send(msg());
    expect(first.roundTrips).toBeGreaterThan(3);
    const e = await failure(client.send(msg('bad@example.com')));
    // warm session, PIPELINING: [RSET MAIL RCPT DATA] then the `.` the 354 forces
    expect(e.roundTrips).toBe(2);
    expect(lines(e)[0]).toBe('I: reusing the kept session');
    const batch = await client.sendBatch([msg('bad@example.com'), msg()]);
    const failed = batch.results[0]!;
    expect(!failed.ok && failed.error.roundTrips).toBe(batch.roundTrips);
    expect(!failed.ok && failed.error.transcript).toBe(batch.transcript);
  });

  it('sendBatch: a failed connect gives every item the error with its context', async () => {
    const srv = await scripted.start();
    const port = srv.port;
    await srv.close();
    const out = await sendBatch({ host: '127.0.0.1', port, transcript: true }, [msg(), msg()]);
    for (const r of out.results) {
      expect(!r.ok && r.error).toMatchObject({ phase: 'connect', roundTrips: 0 });
      expect(!r.ok && r.error.transcript).toEqual([]);
    }
  });

  it('the idle QUIT of a kept session is not appended to the last caller’s transcript', async () => {
    const srv = await scripted.start({ extensions: P });
    const client = scripted.closes(
      new SmtpClient({ host: 'localhost', port: srv.port, ca: TEST_CA, auth, transcript: true }),
    );
    const out = await client.send(msg());
    const n = out.transcript!.length;
    await client.close();
    expect(srv.connections[0]!.commands).toContain('QUIT');
    expect(out.transcript).toHaveLength(n);
  });

  it('withDelivery keeps the context', () => {
    const transcript = [{ t: 1, dir: 'C' as const, line: 'QUIT' }];
    const e = new SmtpError('gone', { phase: 'mail', kind: 'network', roundTrips: 3, transcript });
    expect(e.withDelivery('unknown', 'data')).toMatchObject({
      roundTrips: 3,
      transcript,
      delivery: 'unknown',
    });
  });
});
