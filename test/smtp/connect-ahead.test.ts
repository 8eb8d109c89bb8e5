/**
 * `SmtpClient.connect()` + `useCredentials()`: a cold start opens the session (TCP, TLS, EHLO) before the secret
 * with the credentials is known; AUTH waits for them and is pipelined with the first transaction. The rules of a
 * normal session hold: AUTH only after TLS, only with an offered mechanism (else nothing is sent), exactly one
 * delivery, and the opening's round trips are counted in the first send. And the send layer's `preconnect`: the
 * connection is adopted only when the secret names that same server with nothing else different.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { SmtpTransport } from '../../functions/send/transport.ts';
import type { SmtpSettings } from '../../functions/send/types.ts';
import { SmtpClient } from '../../functions/smtp/index.ts';
import { TcpOpening } from '../../functions/smtp/transport.ts';
import { PIPELINED, useScriptedServers } from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

const msg = (n: number) => ({
  envelope: { from: 'a@example.com', to: ['b@example.com'] },
  content: new TextEncoder().encode(`Subject: m${n}\r\n\r\nbody ${n}\r\n`),
});
const auth = { username: 'u', password: 'p' };
const scripted = useScriptedServers();
const verbs = (commands: string[]) => commands.map((c) => c.split(/[ :]/)[0]);

describe('SmtpClient.connect: the session opened before the credentials', () => {
  it('stops after EHLO on TLS (no AUTH, no MAIL); the first send authenticates and delivers once', async () => {
    const srv = await scripted.start({ extensions: PIPELINED });
    const client = scripted.closes(
      new SmtpClient({ host: 'localhost', port: srv.port, ca: TEST_CA, transcript: true }),
    );
    await client.connect();
    expect(srv.connections).toHaveLength(1);
    const conn = srv.connections[0]!;
    expect(conn.tls).toBe(true);
    expect(verbs(conn.commands)).toEqual(['EHLO', 'STARTTLS', 'EHLO']);
    client.useCredentials(auth);
    const out = await client.send(msg(1));
    expect(out.reused).toBe(false);
    expect(srv.connections).toHaveLength(1);
    expect(verbs(conn.commands)).toEqual(['EHLO', 'STARTTLS', 'EHLO', 'AUTH', 'MAIL', 'RCPT', 'DATA']);
    expect(srv.messages.map((m) => m.toString().split('\r\n')[0])).toEqual(['Subject: m1']);
    // TCP, greeting, EHLO, STARTTLS, TLS, EHLO (the opening) + AUTH/MAIL/RCPT/DATA, body: as one fresh send.
    expect(out.roundTrips).toBe(8);
    expect(out.transcript!.some((l) => l.line.includes('session opened ahead'))).toBe(true);
    const second = await client.send(msg(2));
    expect(second.reused).toBe(true);
  });

  it('credentials given while the connection is still opening are used for it', async () => {
    const srv = await scripted.start({ extensions: PIPELINED });
    const client = scripted.closes(new SmtpClient({ host: 'localhost', port: srv.port, ca: TEST_CA }));
    const opening = client.connect();
    client.useCredentials(auth);
    const sent = client.send(msg(1));
    await opening;
    await sent;
    expect(srv.connections).toHaveLength(1);
    expect(verbs(srv.connections[0]!.commands)).toContain('AUTH');
    expect(srv.messages).toHaveLength(1);
  });

  it('a server that offers no AUTH: the first send fails before MAIL, nothing sent', async () => {
    const srv = await scripted.start({ extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES'] });
    const client = scripted.closes(new SmtpClient({ host: 'localhost', port: srv.port, ca: TEST_CA }));
    await client.connect();
    client.useCredentials(auth);
    await expect(client.send(msg(1))).rejects.toMatchObject({ phase: 'auth', delivery: 'not-sent' });
    expect(verbs(srv.connections.flatMap((c) => c.commands))).not.toContain('MAIL');
    expect(srv.messages).toHaveLength(0);
  });

  it('a failed opening (certificate for another name) leaves nothing; the send connects by itself and fails closed', async () => {
    const srv = await scripted.start({ extensions: PIPELINED, cert: 'wrong' });
    const client = scripted.closes(new SmtpClient({ host: 'localhost', port: srv.port, ca: TEST_CA }));
    await expect(client.connect()).resolves.toBeUndefined();
    client.useCredentials(auth);
    await expect(client.send(msg(1))).rejects.toMatchObject({ phase: 'starttls', delivery: 'not-sent' });
    expect(verbs(srv.connections.flatMap((c) => c.commands))).not.toContain('AUTH');
    expect(srv.messages).toHaveLength(0);
  });

  it('a client that already has credentials refuses others', () => {
    const client = new SmtpClient({ host: 'localhost', port: 1, auth });
    expect(() => client.useCredentials(auth)).toThrow(/already has credentials/);
  });
});

describe('TcpOpening: the TCP connection a cold start opens before the session exists', () => {
  it('the greeting waits in the socket; the session carries on from it over that one connection', async () => {
    const srv = await scripted.start({ extensions: PIPELINED });
    const opening = new TcpOpening({ host: '127.0.0.1', port: srv.port, timeoutMs: 2000 });
    for (let i = 0; i < 100 && !srv.connections[0]?.greeted; i++) await sleep(10);
    expect(srv.connections[0]?.greeted).toBe(true); // the greeting was written while nobody read
    await sleep(50);
    expect(srv.connections[0]!.commands).toEqual([]);
    const client = scripted.closes(
      new SmtpClient({ host: '127.0.0.1', port: srv.port, ca: TEST_CA, transcript: true }),
    );
    await client.connect({}, opening);
    client.useCredentials(auth);
    const out = await client.send(msg(1));
    expect(srv.connections).toHaveLength(1);
    expect(verbs(srv.connections[0]!.commands)).toEqual([
      'EHLO',
      'STARTTLS',
      'EHLO',
      'AUTH',
      'MAIL',
      'RCPT',
      'DATA',
    ]);
    expect(srv.messages).toHaveLength(1);
    expect(out.roundTrips).toBe(8); // the connect is counted once, as in any fresh send
    expect(out.transcript!.some((l) => l.line.includes('(opened ahead)'))).toBe(true);
  });

  it('a connection reset while it waits is no crash (no unhandled error): take() says so, the client connects anew', async () => {
    const srv = await scripted.start({
      extensions: PIPELINED,
      greeting: (i) => (i === 0 ? null : undefined),
    });
    const opening = new TcpOpening({ host: '127.0.0.1', port: srv.port, timeoutMs: 2000 });
    for (let i = 0; i < 100 && !srv.connections[0]; i++) await sleep(10);
    srv.connections[0]!.reset();
    await sleep(50);
    const client = scripted.closes(new SmtpClient({ host: '127.0.0.1', port: srv.port, ca: TEST_CA }));
    await client.connect({}, opening); // never throws; nothing kept
    client.useCredentials(auth);
    await client.send(msg(1));
    expect(srv.connections).toHaveLength(2);
    expect(srv.connections[0]!.commands).toEqual([]);
    expect(srv.messages).toHaveLength(1);
  });

  it('take(): a refused connect is a network failure in phase connect; a second take is a usage error', async () => {
    const srv = await scripted.start();
    const port = srv.port;
    await srv.close();
    const opening = new TcpOpening({ host: '127.0.0.1', port, timeoutMs: 2000 });
    await expect(opening.take()).rejects.toMatchObject({ phase: 'connect', kind: 'network' });
    await expect(opening.take()).rejects.toMatchObject({ phase: 'connect', kind: 'usage' });
  });

  it('an opening to another server, or one nobody needs, is closed unused: no byte is written to it', async () => {
    const other = await scripted.start({ extensions: PIPELINED });
    const srv = await scripted.start({ extensions: PIPELINED });
    const opening = new TcpOpening({ host: '127.0.0.1', port: other.port, timeoutMs: 2000 });
    const client = scripted.closes(new SmtpClient({ host: '127.0.0.1', port: srv.port, ca: TEST_CA }));
    await client.connect({}, opening);
    await other.connections[0]!.closed;
    expect(other.connections[0]!.commands).toEqual([]);
    expect(srv.connections).toHaveLength(1);
    expect(verbs(srv.connections[0]!.commands)).toEqual(['EHLO', 'STARTTLS', 'EHLO']);
    const unneeded = new TcpOpening({ host: '127.0.0.1', port: other.port, timeoutMs: 2000 });
    unneeded.close(); // before its connect completed: closed when it does
    for (let i = 0; i < 100 && !other.connections[1]; i++) await sleep(10);
    await other.connections[1]!.closed;
    expect(other.connections[1]!.commands).toEqual([]);
  });
});

describe('SmtpTransport.preconnect', () => {
  const settings = (port: number, extra: Partial<SmtpSettings['connection']> = {}): SmtpSettings => ({
    connection: { host: 'localhost', port, security: 'starttls', auth, ...extra },
    from: 'a@example.com',
    revision: 'r1',
  });

  it('the secret names the hinted server: the opened connection carries the first message', async () => {
    // Clear text to a loopback server without credentials, so that nothing but the server differs (a `ca`, as a
    // test certificate would need, rules the adoption out: see the next tests).
    const srv = await scripted.start({
      extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES'],
      extensionsBeforeTls: ['PIPELINING'],
    });
    const transport = new SmtpTransport({ reuse: true, idleTimeoutMs: 60_000 });
    try {
      transport.preconnect({ host: '127.0.0.1', port: srv.port, security: 'none' });
      const s: SmtpSettings = {
        connection: { host: '127.0.0.1', port: srv.port, security: 'none' },
        from: 'a@example.com',
        revision: 'r1',
      };
      const out = await transport.sendBatch(s, [msg(1)], Date.now() + 10_000);
      expect(out.results[0]!.ok).toBe(true);
      expect(out.reused).toBe(false);
      expect(srv.connections).toHaveLength(1);
      expect(verbs(srv.connections[0]!.commands)).toEqual(['EHLO', 'MAIL', 'RCPT', 'DATA']);
    } finally {
      await transport.close();
    }
  });

  it('a `ca` in the secret: not adopted (closed unused); the message goes over a connection that trusts it', async () => {
    const srv = await scripted.start({ extensions: PIPELINED });
    const transport = new SmtpTransport({ reuse: true, idleTimeoutMs: 60_000 });
    try {
      transport.preconnect({ host: 'localhost', port: srv.port });
      const out = await transport.sendBatch(
        settings(srv.port, { ca: TEST_CA }),
        [msg(1)],
        Date.now() + 10_000,
      );
      expect(out.results[0]!.ok).toBe(true);
      expect(srv.messages).toHaveLength(1);
      const withMail = srv.connections.filter((c) => verbs(c.commands).includes('MAIL'));
      expect(withMail).toHaveLength(1);
      expect(verbs(withMail[0]!.commands).slice(0, 4)).toEqual(['EHLO', 'STARTTLS', 'EHLO', 'AUTH']);
    } finally {
      await transport.close();
    }
  });

  it('another server in the secret: the opened connection is closed unused, the message goes where the secret says', async () => {
    const hinted = await scripted.start({ extensions: PIPELINED });
    const real = await scripted.start({ extensions: PIPELINED });
    const transport = new SmtpTransport({ reuse: true, idleTimeoutMs: 60_000 });
    try {
      transport.preconnect({ host: 'localhost', port: hinted.port });
      const out = await transport.sendBatch(
        settings(real.port, { ca: TEST_CA }),
        [msg(1)],
        Date.now() + 10_000,
      );
      expect(out.results[0]!.ok).toBe(true);
      expect(real.messages).toHaveLength(1);
      expect(hinted.messages).toHaveLength(0);
      for (const c of hinted.connections) {
        expect(verbs(c.commands)).not.toContain('AUTH');
        expect(verbs(c.commands)).not.toContain('MAIL');
      }
    } finally {
      await transport.close();
    }
  });
});
