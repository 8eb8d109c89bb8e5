/** End to end against a real peer: the npm smtp-server (STARTTLS with certs/dev, AUTH PLAIN/LOGIN, PIPELINING). */
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpClient, SmtpError, sendBatch, sendMail, verify } from '../../functions/smtp/index.ts';
import {
  startSmtpServer,
  TEST_AUTH,
  TEST_CA,
  TEST_PASSWORD,
  type TestSmtpServer,
} from '../support/smtp-server.ts';

const enc = (s: string) => new TextEncoder().encode(s);
let srv: TestSmtpServer;
let opts: { host: string; port: number; ca: string; auth: typeof TEST_AUTH };

beforeAll(async () => {
  srv = await startSmtpServer();
  opts = { host: 'localhost', port: srv.port, ca: TEST_CA, auth: TEST_AUTH };
});
afterAll(async () => {
  await srv.close();
});

function message(subject: string, body: string, to = ['rcpt@example.com']) {
  return {
    envelope: { from: 'sender@example.com', to },
    content: enc(
      `From: sender@example.com\nTo: ${to.join(', ')}\nSubject: ${subject}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n${body}`,
    ),
  };
}

describe('against smtp-server', () => {
  it('verify: STARTTLS, AUTH PLAIN, capabilities, TLS info', async () => {
    const r = await verify({ ...opts, transcript: true });
    expect(r.authMechanism).toBe('PLAIN');
    expect(r.capabilities.pipelining).toBe(true);
    expect(r.tls).toMatchObject({ subject: 'localhost', issuer: expect.stringContaining('DEV-ONLY') });
    expect(r.greeting).toContain('test server ready');
    const text = JSON.stringify(r.transcript);
    expect(text).not.toContain(TEST_PASSWORD);
    expect(text).not.toContain(Buffer.from(`\0${TEST_AUTH.username}\0${TEST_PASSWORD}`).toString('base64'));
    expect(text).toContain('AUTH PLAIN ***');
  });

  it('multi-recipient with partial rejection; message parsed back with mailparser', async () => {
    const before = srv.messages.length;
    const out = await sendMail(
      { ...opts, transcript: true },
      message('Hello', 'Grüße!\n.\n..dots\n.leading\nend', [
        'a@example.com',
        'reject-me@example.com',
        'b@example.com',
      ]),
    );
    expect(out.accepted.map((a) => a.address)).toEqual(['a@example.com', 'b@example.com']);
    expect(out.rejected).toEqual([
      {
        address: 'reject-me@example.com',
        code: 550,
        enhancedCode: '5.1.1',
        message: expect.stringContaining('No such user'),
      },
    ]);
    expect(out.queueId).toBe(`Q${before + 1}`);
    expect(out.roundTrips).toBe(8);
    const got = srv.messages.at(-1)!;
    expect(got.envelope.to).toEqual(['a@example.com', 'b@example.com']);
    expect(got.secure).toBe(true);
    expect(got.user).toBe(TEST_AUTH.username);
    const parsed = await simpleParser(got.raw);
    expect(parsed.subject).toBe('Hello');
    expect(parsed.text).toBe('Grüße!\n.\n..dots\n.leading\nend\n');
    expect(got.mailParams).toMatchObject({ BODY: '8BITMIME' });
    // The transcript carries no content, just its size.
    expect(out.transcript!.some((l) => /^\[message: \d+ octets\]$/.test(l.line))).toBe(true);
    expect(JSON.stringify(out.transcript)).not.toContain('Grüße');
  });

  it('lone-dot lines and lines starting with "." arrive byte for byte (CRLF-normalised)', async () => {
    const body = '.\r\n..\r\n.x\r\nline\r\n.\r\n\r\n.\r\nlast.';
    const out = await sendMail(opts, { envelope: { from: '', to: ['r@example.com'] }, content: enc(body) });
    expect(out.response.code).toBe(250);
    expect(srv.messages.at(-1)!.raw.toString()).toBe(`${body}\r\n`);
    expect(srv.messages.at(-1)!.envelope.from).toBe('');
  });

  it('binary 8-bit content and a 1 MB message arrive intact', async () => {
    const bin = new Uint8Array(256 * 3);
    for (let i = 0; i < bin.length; i++) bin[i] = i % 256 === 10 || i % 256 === 13 ? 65 : i % 256;
    const head = enc('Subject: bin\r\n\r\n');
    const content = new Uint8Array(head.length + bin.length);
    content.set(head);
    content.set(bin, head.length);
    await sendMail(opts, { envelope: { from: 's@example.com', to: ['r@example.com'] }, content });
    expect([...srv.messages.at(-1)!.raw]).toEqual([...content, 13, 10]);
    expect(srv.messages.at(-1)!.mailParams).toMatchObject({ BODY: '8BITMIME' });

    const line = `${'x'.repeat(76)}\r\n`;
    const big = `Subject: big\r\n\r\n${line.repeat(Math.ceil(1_048_576 / line.length))}`;
    const out = await sendMail(opts, {
      envelope: { from: 's@example.com', to: ['r@example.com'] },
      content: enc(big),
    });
    expect(out.response.code).toBe(250);
    expect(srv.messages.at(-1)!.raw.length).toBe(big.length);
    expect(srv.messages.at(-1)!.raw.equals(Buffer.from(big))).toBe(true);
  });

  it('AUTH LOGIN when asked for; implicit TLS', async () => {
    const out = await sendMail(
      { ...opts, auth: { ...TEST_AUTH, mechanism: 'LOGIN' }, transcript: true },
      message('login', 'hi'),
    );
    expect(srv.authAttempts.at(-1)).toEqual({ method: 'LOGIN', username: TEST_AUTH.username });
    expect(JSON.stringify(out.transcript)).not.toContain(Buffer.from(TEST_PASSWORD).toString('base64'));
    const tlsSrv = await startSmtpServer({ secure: true });
    try {
      const r = await sendMail({ ...opts, port: tlsSrv.port, security: 'tls' }, message('implicit', 'hi'));
      expect(r.tls?.protocol).toMatch(/TLSv1\.[23]/);
      expect(tlsSrv.messages).toHaveLength(1);
    } finally {
      await tlsSrv.close();
    }
  });

  it('wrong password: SmtpError phase auth, 535, nothing delivered', async () => {
    const before = srv.messages.length;
    const err = await sendMail(
      { ...opts, auth: { ...TEST_AUTH, password: 'nope' } },
      message('x', 'y'),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect(err).toMatchObject({ phase: 'auth', code: 535, transient: false, delivery: 'not-sent' });
    expect(JSON.stringify(err)).not.toContain('nope');
    expect(srv.messages.length).toBe(before);
  });

  it('all recipients rejected: SmtpError phase rcpt', async () => {
    const err = await sendMail(
      opts,
      message('x', 'y', ['reject-1@example.com', 'defer-2@example.com']),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ phase: 'rcpt', code: 550, delivery: 'not-sent' });
  });

  it('batch of 5 over one session, one failing item does not stop the others', async () => {
    const conns = srv.connections;
    const before = srv.messages.length;
    const msgs = [0, 1, 2, 3, 4].map((i) =>
      message(`batch ${i}`, `n${i}`, [i === 2 ? 'reject@example.com' : `r${i}@example.com`]),
    );
    const out = await sendBatch(opts, msgs);
    expect(srv.connections).toBe(conns + 1);
    expect(out.results.map((r) => r.ok)).toEqual([true, true, false, true, true]);
    const failed = out.results[2]!;
    expect(!failed.ok && failed.error.phase).toBe('rcpt');
    expect(srv.messages.slice(before).map((m) => m.envelope.to[0])).toEqual([
      'r0@example.com',
      'r1@example.com',
      'r3@example.com',
      'r4@example.com',
    ]);
    // 6 to get ready + 1 per message (the `.` of k travels with MAIL/RCPT/DATA of k+1)
    expect(out.roundTrips).toBe(6 + 5 + 1);
  });

  it('warm reuse: two sends, one session', async () => {
    const conns = srv.connections;
    const client = new SmtpClient(opts);
    try {
      const a = await client.send(message('warm 1', 'one'));
      const b = await client.send(message('warm 2', 'two'));
      expect(a.reused).toBe(false);
      expect(b.reused).toBe(true);
      expect(b.roundTrips).toBe(2);
      expect(srv.connections).toBe(conns + 1);
      const subjects = await Promise.all(
        srv.messages.slice(-2).map(async (m) => (await simpleParser(m.raw)).subject),
      );
      expect(subjects).toEqual(['warm 1', 'warm 2']);
    } finally {
      await client.close();
    }
  });
});

describe('extensions against smtp-server', () => {
  it('SMTPUTF8 for a non-ASCII address; clear error when not advertised', async () => {
    const before = srv.messages.length;
    const m = {
      envelope: { from: 'sender@example.com', to: ['jürgen@bücher.example'] },
      content: enc('Subject: ü\n\nx\n'),
    };
    await sendMail(opts, m);
    expect(srv.messages.at(-1)!.envelope.to).toEqual(['jürgen@bücher.example']);
    expect(srv.messages.at(-1)!.mailParams).toMatchObject({ SMTPUTF8: true });
    expect(srv.messages.length).toBe(before + 1);
    const plain = await startSmtpServer({ hideSMTPUTF8: true });
    try {
      await expect(sendMail({ ...opts, port: plain.port }, m)).rejects.toMatchObject({
        phase: 'mail',
        kind: 'usage',
        delivery: 'not-sent',
        message: expect.stringContaining('SMTPUTF8'),
      });
      expect(plain.mailFrom).toEqual([]);
    } finally {
      await plain.close();
    }
  });

  it('SIZE: a message over the advertised limit is refused before MAIL', async () => {
    const small = await startSmtpServer({ size: 1000 });
    try {
      const big = {
        envelope: { from: 's@example.com', to: ['r@example.com'] },
        content: enc(`Subject: x\n\n${'y'.repeat(2000)}`),
      };
      await expect(sendMail({ ...opts, port: small.port }, big)).rejects.toMatchObject({
        phase: 'mail',
        delivery: 'not-sent',
      });
      expect(small.mailFrom).toEqual([]);
      const ok = {
        envelope: { from: 's@example.com', to: ['r@example.com'] },
        content: enc('Subject: x\n\nsmall'),
      };
      await sendMail({ ...opts, port: small.port }, ok);
      expect(small.messages[0]!.mailParams).toMatchObject({ SIZE: '21' });
    } finally {
      await small.close();
    }
  });
});
