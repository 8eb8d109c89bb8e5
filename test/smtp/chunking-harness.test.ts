/**
 * Proves the Exim CHUNKING harness itself with raw sockets (no client code of ours): EHLO shows CHUNKING,
 * `BDAT n LAST` is accepted, bytes arrive intact (lone dots, 8-bit), the reject-/defer- rules answer 550/451,
 * AUTH is offered only after STARTTLS and works there, and close() leaves no process behind.
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ChunkingServer,
  groupMembers,
  parseDelivered,
  startChunkingServer,
} from '../support/chunking-server.ts';

/** Minimal line-oriented SMTP peer for raw checks: collects complete replies (last line "ddd "). */
class RawSession {
  private buf = '';
  private waiters: Array<() => void> = [];
  constructor(public sock: net.Socket | tls.TLSSocket) {
    this.attach(sock);
  }
  attach(sock: net.Socket | tls.TLSSocket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      for (const w of this.waiters.splice(0)) w();
    });
  }
  /** Waits for `n` complete replies and returns them (each as its lines joined by \n). */
  async replies(n: number, ms = 5000): Promise<string[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const out: string[] = [];
      let cur: string[] = [];
      let consumed = 0;
      let pos = 0;
      for (;;) {
        const end = this.buf.indexOf('\r\n', pos);
        if (end < 0) break;
        const line = this.buf.slice(pos, end);
        pos = end + 2;
        cur.push(line);
        if (/^\d{3}( |$)/.test(line)) {
          out.push(cur.join('\n'));
          cur = [];
          consumed = pos;
          if (out.length === n) break;
        }
      }
      if (out.length === n) {
        this.buf = this.buf.slice(consumed);
        return out;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${n} replies; have: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  send(data: string | Buffer) {
    this.sock.write(data);
  }
}

async function connectRaw(port: number): Promise<RawSession> {
  const sock = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return new RawSession(sock);
}

let server: ChunkingServer;

beforeAll(async () => {
  const t0 = Date.now();
  server = await startChunkingServer();
  console.info(`[chunking-harness] exim up on 127.0.0.1:${server.port} in ${Date.now() - t0} ms`);
});

afterAll(async () => {
  await server?.close();
});

describe('Exim CHUNKING harness (raw sockets)', () => {
  it('advertises CHUNKING, PIPELINING, 8BITMIME, SMTPUTF8, SIZE, STARTTLS; no AUTH before TLS', async () => {
    const s = await connectRaw(server.port);
    const [greeting] = await s.replies(1);
    expect(greeting).toMatch(/^220 /);
    s.send('EHLO client.example\r\n');
    const [ehlo] = await s.replies(1);
    for (const kw of ['CHUNKING', 'PIPELINING', '8BITMIME', 'SMTPUTF8', 'STARTTLS']) {
      expect(ehlo).toMatch(new RegExp(`^250[- ]${kw}$`, 'm'));
    }
    expect(ehlo).toMatch(/^250[- ]SIZE 52428800$/m);
    expect(ehlo).not.toMatch(/AUTH/);
    s.send('QUIT\r\n');
    await s.replies(1);
    s.sock.destroy();
  });

  it('accepts MAIL, RCPTs and BDAT n LAST in one write; lone dots and 8-bit bytes arrive intact', async () => {
    const before = (await server.messages()).length;
    const s = await connectRaw(server.port);
    await s.replies(1);
    s.send('EHLO client.example\r\n');
    await s.replies(1);
    const body = Buffer.concat([
      Buffer.from('From: a@example.org\r\nTo: x@example.com\r\nSubject: raw bdat\r\n\r\n'),
      Buffer.from('.\r\n..two dots\r\n.\r\nlatin: '),
      Buffer.from([0xc3, 0xa9, 0xff, 0x80]),
      Buffer.from('\r\nend\r\n'),
    ]);
    s.send(
      Buffer.concat([
        Buffer.from(
          'MAIL FROM:<a@example.org> BODY=8BITMIME\r\n' +
            'RCPT TO:<x@example.com>\r\n' +
            'RCPT TO:<reject-me@example.com>\r\n' +
            'RCPT TO:<defer-me@example.com>\r\n' +
            'RCPT TO:<y@other.example>\r\n' +
            `BDAT ${body.length} LAST\r\n`,
        ),
        body,
      ]),
    );
    const [mail, r1, r2, r3, r4, bdat] = await s.replies(6);
    expect(mail).toMatch(/^250 /);
    expect(r1).toMatch(/^250 /);
    expect(r2).toMatch(/^550 5\.1\.1 <reject-me@example\.com> rejected/);
    expect(r3).toMatch(/^451 4\.2\.0 <defer-me@example\.com> deferred/);
    expect(r4).toMatch(/^250 /);
    expect(bdat).toMatch(/^250 OK id=/m);
    s.send('QUIT\r\n');
    await s.replies(1);
    s.sock.destroy();

    const got = await server.waitForMessages(before + 1);
    const msg = got[before]!;
    expect(msg.envelopeFrom).toBe('a@example.org');
    expect(msg.recipients).toEqual(['x@example.com', 'y@other.example']);
    expect(msg.raw.equals(body)).toBe(true);
  });

  it('BDAT in several chunks, then a second transaction on the same session', async () => {
    const before = (await server.messages()).length;
    const s = await connectRaw(server.port);
    await s.replies(1);
    s.send('EHLO client.example\r\n');
    await s.replies(1);
    const part1 = Buffer.from('Subject: chunks\r\n\r\nfirst chunk ');
    const part2 = Buffer.from('second chunk\r\n');
    s.send(`MAIL FROM:<>\r\nRCPT TO:<z@example.com>\r\nBDAT ${part1.length}\r\n`);
    s.send(part1);
    s.send(`BDAT ${part2.length} LAST\r\n`);
    s.send(part2);
    const replies = await s.replies(4);
    expect(replies[2]).toMatch(/^250 /);
    expect(replies[3]).toMatch(/^250 OK id=/m);
    const m2 = Buffer.from('Subject: second\r\n\r\nx\r\n');
    s.send(`MAIL FROM:<b@example.org>\r\nRCPT TO:<w@example.com>\r\nBDAT ${m2.length} LAST\r\n`);
    s.send(m2);
    const r2 = await s.replies(3);
    expect(r2[2]).toMatch(/^250 OK id=/m);
    s.send('QUIT\r\n');
    await s.replies(1);
    s.sock.destroy();
    const got = await server.waitForMessages(before + 2);
    const mine = got.slice(before);
    const first = mine.find((m) => m.recipients[0] === 'z@example.com')!;
    expect(first.envelopeFrom).toBe('');
    expect(first.raw.toString()).toBe('Subject: chunks\r\n\r\nfirst chunk second chunk\r\n');
    expect(mine.find((m) => m.recipients[0] === 'w@example.com')?.envelopeFrom).toBe('b@example.org');
  });

  it('STARTTLS with certs/dev (verified against ca.pem), then AUTH PLAIN/LOGIN offered and checked', async () => {
    const s = await connectRaw(server.port);
    await s.replies(1);
    s.send('EHLO client.example\r\nSTARTTLS\r\n');
    const [, ready] = await s.replies(2);
    expect(ready).toMatch(/^220 /);
    const secure = tls.connect({ socket: s.sock as net.Socket, servername: 'localhost', ca: server.ca });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    expect(secure.authorized).toBe(true);
    s.attach(secure);
    s.send('EHLO client.example\r\n');
    const [ehlo] = await s.replies(1);
    expect(ehlo).toMatch(/^250[- ]AUTH PLAIN LOGIN$/m);
    expect(ehlo).toMatch(/^250[- ]CHUNKING$/m);
    const bad = Buffer.from(`\0${server.username}\0wrong`).toString('base64');
    s.send(`AUTH PLAIN ${bad}\r\n`);
    expect((await s.replies(1))[0]).toMatch(/^535 /);
    s.send('AUTH LOGIN\r\n');
    expect((await s.replies(1))[0]).toBe('334 VXNlcm5hbWU6');
    s.send(`${Buffer.from(server.username).toString('base64')}\r\n`);
    expect((await s.replies(1))[0]).toBe('334 UGFzc3dvcmQ6');
    s.send(`${Buffer.from(server.password).toString('base64')}\r\n`);
    expect((await s.replies(1))[0]).toMatch(/^235 /);
    s.send('QUIT\r\n');
    await s.replies(1);
    secure.destroy();
  });

  it('parseDelivered strips only the Return-path and Envelope-to Exim adds', () => {
    const file = Buffer.from(
      'Return-path: <>\r\nEnvelope-to: a@x.example,\r\n b@y.example\r\nReturn-path: not-ours\r\n\r\nbody\r\n',
    );
    const m = parseDelivered('f', file);
    expect(m.envelopeFrom).toBe('');
    expect(m.recipients).toEqual(['a@x.example', 'b@y.example']);
    // the message's own header block begins at the first header Exim did not add...
    expect(m.raw.toString()).toMatch(/^Return-path: not-ours/);
  });
});

describe('Exim CHUNKING harness lifecycle', () => {
  it('implicitTls: a second port speaks TLS on connect (RFC 8314) with AUTH and CHUNKING', async () => {
    const srv = await startChunkingServer({ implicitTls: true });
    try {
      expect(srv.tlsPort).toBeGreaterThan(0);
      const secure = tls.connect({
        host: '127.0.0.1',
        port: srv.tlsPort!,
        servername: 'localhost',
        ca: srv.ca,
      });
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('error', reject);
      });
      const s = new RawSession(secure);
      expect((await s.replies(1))[0]).toMatch(/^220 /);
      s.send('EHLO client.example\r\n');
      const [ehlo] = await s.replies(1);
      expect(ehlo).toMatch(/^250[- ]AUTH PLAIN LOGIN$/m);
      expect(ehlo).toMatch(/^250[- ]CHUNKING$/m);
      expect(ehlo).not.toMatch(/STARTTLS/);
      s.send('QUIT\r\n');
      await s.replies(1);
      secure.destroy();
    } finally {
      await srv.close();
    }
  });

  it('sizeLimit: SIZE is advertised and Exim itself refuses a larger BDAT body (552)', async () => {
    const srv = await startChunkingServer({ sizeLimit: 10_000 });
    try {
      const s = await connectRaw(srv.port);
      await s.replies(1);
      s.send('EHLO client.example\r\n');
      expect((await s.replies(1))[0]).toMatch(/^250[- ]SIZE 10000$/m);
      const body = Buffer.alloc(20_000, 'x\r\n');
      s.send(`MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT ${body.length} LAST\r\n`);
      s.send(body);
      const [, , bdat] = await s.replies(3);
      expect(bdat).toMatch(/^552 /m);
      s.sock.destroy();
      await new Promise((r) => setTimeout(r, 200));
      expect(await srv.messages()).toHaveLength(0);
    } finally {
      await srv.close();
    }
  });

  it('close() stops the daemon and its process group and removes the temp dir', async () => {
    const srv = await startChunkingServer();
    const pid = srv.pid;
    expect(() => process.kill(pid, 0)).not.toThrow();
    expect(existsSync(srv.dir)).toBe(true);
    const t0 = Date.now();
    await srv.close();
    console.info(`[chunking-harness] close() took ${Date.now() - t0} ms`);
    expect(existsSync(srv.dir)).toBe(false);
    expect(groupMembers(pid)).toEqual([]);
    await srv.close(); // idempotent
    expect(() => process.kill(pid, 0)).toThrow();
    expect(() => process.kill(-pid, 0)).toThrow();
    const refused = await new Promise<boolean>((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port: srv.port });
      sock.once('connect', () => {
        sock.destroy();
        resolve(false);
      });
      sock.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});
