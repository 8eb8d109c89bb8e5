/**
 * OUR SMTP client against a real CHUNKING server (Exim 4.96, see test/support/chunking-server.ts): BDAT … LAST
 * instead of DATA, STARTTLS + AUTH PLAIN pipelined with the transaction, exact bytes (lone dots, 8-bit, 1 MB),
 * a refused and a deferred recipient, a 20-message batch over one session, and warm reuse via SmtpClient.
 * Arrivals are read back from Exim's maildir and parsed with mailparser. Round trips are printed.
 */
import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compose } from '../../functions/mime/index.ts';
import {
  type ConnectionOptions,
  type OutgoingMessage,
  SmtpClient,
  SmtpError,
  sendBatch,
  sendMail,
  type TranscriptLine,
} from '../../functions/smtp/index.ts';
import {
  type ChunkingServer,
  type ReceivedMessage,
  startChunkingServer,
} from '../support/chunking-server.ts';

let server: ChunkingServer;

beforeAll(async () => {
  server = await startChunkingServer();
});

afterAll(async () => {
  await server?.close();
});

function options(s: ChunkingServer, extra: Partial<ConnectionOptions> = {}): ConnectionOptions {
  return {
    host: s.host,
    port: s.port,
    security: 'starttls',
    ca: s.ca,
    auth: { username: s.username, password: s.password, mechanism: 'PLAIN' },
    transcript: true,
    timeouts: { connect: 10_000, greeting: 10_000, reply: 10_000, data: 30_000 },
    ...extra,
  };
}

const clientLines = (t: TranscriptLine[] | undefined) =>
  (t ?? []).filter((l) => l.dir === 'C').map((l) => l.line);

/** Raw message from parts: header block + body, CRLF everywhere. */
function rawMessage(headers: string[], body: Buffer): Uint8Array {
  return new Uint8Array(Buffer.concat([Buffer.from(`${headers.join('\r\n')}\r\n\r\n`), body]));
}

function uniqueTag(): string {
  return randomBytes(6).toString('hex');
}

/** The delivered message whose raw bytes contain `tag` (arrival order is not guaranteed across tests). */
async function arrivalWith(s: ChunkingServer, tag: string, count = 1): Promise<ReceivedMessage[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const mine = (await s.messages()).filter((m) => m.raw.includes(tag));
    if (mine.length >= count) return mine;
    if (Date.now() > deadline) throw new Error(`no arrival with ${tag}; exim log:\n${s.log().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('our client against Exim (CHUNKING)', () => {
  it('STARTTLS + AUTH PLAIN, then MAIL/RCPT/BDAT n LAST in one group: no DATA, arrives as composed', async () => {
    const tag = uniqueTag();
    const composed = compose(
      {
        from: 'Sender <sender@example.org>',
        to: ['Rcpt <rcpt@example.com>'],
        subject: `BDAT check ${tag} — ünïcödé`,
        text: `Hello over BDAT ${tag}\n`,
        html: `<p>Hello <b>${tag}</b></p>`,
      },
      { eightBitMime: true },
    );
    const outcome = await sendMail(options(server), {
      envelope: composed.envelope,
      content: composed.bytes,
      info: { eightBit: composed.eightBit, smtpUtf8: composed.smtpUtf8 },
    });
    const c = clientLines(outcome.transcript);
    console.info(`[chunking] single send: roundTrips=${outcome.roundTrips}`);
    expect(c).toContain('STARTTLS');
    expect(c).toContain('AUTH PLAIN ***'); // redacted in the transcript
    expect(c.some((l) => new RegExp(`^BDAT ${composed.size} LAST$`).test(l))).toBe(true);
    expect(c.some((l) => /^DATA$/i.test(l))).toBe(false);
    expect(outcome.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(outcome.capabilities.chunking).toBe(true);
    expect(outcome.queueId).toMatch(/^[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2,4}$/);
    expect(outcome.accepted.map((r) => r.address)).toEqual(['rcpt@example.com']);
    // RFC floor for 587 + PIPELINING + CHUNKING (protocol notes): TCP, greeting, EHLO, STARTTLS, TLS, EHLO, group
    expect(outcome.roundTrips).toBeLessThanOrEqual(7);

    const [got] = await arrivalWith(server, tag);
    expect(got!.envelopeFrom).toBe('sender@example.org');
    expect(got!.recipients).toEqual(['rcpt@example.com']);
    expect(got!.raw.equals(Buffer.from(composed.bytes))).toBe(true);
    const parsed = await simpleParser(got!.raw);
    expect(parsed.subject).toBe(`BDAT check ${tag} — ünïcödé`);
    expect(parsed.text?.trim()).toBe(`Hello over BDAT ${tag}`);
    expect(parsed.html).toContain(`<b>${tag}</b>`);
    expect(parsed.messageId).toBe(composed.messageId);
  });

  it('lone-dot lines arrive intact: BDAT has no dot-stuffing (and the DATA path un-stuffs to the same bytes)', async () => {
    for (const chunking of [true, false]) {
      const tag = uniqueTag();
      const body = Buffer.from(`.\r\n..\r\n.leading dot\r\n${tag}\r\n. \r\n...\r\n.\r\n`);
      const content = rawMessage(
        [
          'From: a@example.org',
          'To: b@example.com',
          `Subject: dots ${tag}`,
          `Message-ID: <${tag}@example.org>`,
        ],
        body,
      );
      const outcome = await sendMail(options(server, { chunking }), {
        envelope: { from: 'a@example.org', to: ['b@example.com'] },
        content,
      });
      const c = clientLines(outcome.transcript);
      if (chunking) expect(c.some((l) => /^BDAT \d+ LAST$/.test(l))).toBe(true);
      else expect(c).toContain('DATA');
      const [got] = await arrivalWith(server, tag);
      expect(got!.raw.equals(Buffer.from(content))).toBe(true);
    }
  });

  it('1 MB message with an 8-bit body and a 1 MB binary attachment', async () => {
    const tag = uniqueTag();
    // 8-bit body: every octet 0x20–0xFF, 100-octet lines, ~1 MB (BODY=8BITMIME; no NUL/CR/LF: not BINARYMIME)
    const lines: Buffer[] = [];
    const all = Buffer.from(Array.from({ length: 224 }, (_, i) => 0x20 + i));
    for (let i = 0; i < 10_000; i++) {
      const start = (i * 7) % 124;
      lines.push(all.subarray(start, start + 100), Buffer.from('\r\n'));
    }
    const body = Buffer.concat([Buffer.from(`${tag}\r\n`), ...lines]);
    const raw = rawMessage(
      [
        'From: big@example.org',
        'To: big@example.com',
        `Subject: big ${tag}`,
        'MIME-Version: 1.0',
        'Content-Type: application/octet-stream',
        'Content-Transfer-Encoding: 8bit',
      ],
      body,
    );
    expect(raw.length).toBeGreaterThan(1_000_000);
    const first = await sendMail(options(server), {
      envelope: { from: 'big@example.org', to: ['big@example.com'] },
      content: raw,
      info: { eightBit: true },
    });
    const c = clientLines(first.transcript);
    expect(c.some((l) => l === `BDAT ${raw.length} LAST` || /^BDAT \d+$/.test(l))).toBe(true);
    expect(c.some((l) => /BODY=8BITMIME/.test(l))).toBe(true);
    const [got] = await arrivalWith(server, tag);
    expect(got!.raw.length).toBe(raw.length);
    expect(got!.raw.equals(Buffer.from(raw))).toBe(true);

    const tag2 = uniqueTag();
    const bin = randomBytes(1024 * 1024);
    const composed = compose({
      from: 'big@example.org',
      to: 'big@example.com',
      subject: `attachment ${tag2}`,
      text: 'see attachment',
      attachments: [{ filename: 'random.bin', content: bin }],
    });
    const second = await sendMail(options(server), { envelope: composed.envelope, content: composed.bytes });
    console.info(
      `[chunking] 1 MB 8-bit: roundTrips=${first.roundTrips}; 1 MiB attachment: ${second.roundTrips}`,
    );
    const [got2] = await arrivalWith(server, tag2);
    const parsed = await simpleParser(got2!.raw);
    expect(parsed.attachments).toHaveLength(1);
    expect(parsed.attachments[0]!.filename).toBe('random.bin');
    expect(Buffer.compare(parsed.attachments[0]!.content, bin)).toBe(0);
  });

  it('multi-recipient: 550 and 451 recipients are reported, the message goes to the others', async () => {
    const tag = uniqueTag();
    const composed = compose({
      from: 'multi@example.org',
      to: ['one@example.com', 'reject-two@example.com', 'three@other.example'],
      cc: ['defer-four@example.com'],
      subject: `multi ${tag}`,
      text: 'hi',
    });
    const outcome = await sendMail(options(server), { envelope: composed.envelope, content: composed.bytes });
    expect(outcome.accepted.map((r) => r.address).sort()).toEqual(['one@example.com', 'three@other.example']);
    const rejected = Object.fromEntries(outcome.rejected.map((r) => [r.address, r]));
    expect(rejected['reject-two@example.com']?.code).toBe(550);
    expect(rejected['reject-two@example.com']?.message).toMatch(/rejected by test rule/);
    expect(rejected['defer-four@example.com']?.code).toBe(451);
    const [got] = await arrivalWith(server, tag);
    expect(got!.recipients.sort()).toEqual(['one@example.com', 'three@other.example']);
    const parsed = await simpleParser(got!.raw);
    expect(parsed.subject).toBe(`multi ${tag}`);
  });

  it('every recipient refused: SmtpError in rcpt, not sent, BDAT body not delivered', async () => {
    const tag = uniqueTag();
    const before = (await server.messages()).length;
    const err = await sendMail(options(server), {
      envelope: { from: 'x@example.org', to: ['reject-a@example.com', 'reject-b@example.com'] },
      content: rawMessage([`Subject: none ${tag}`], Buffer.from('x\r\n')),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect((err as SmtpError).phase).toBe('rcpt');
    expect((err as SmtpError).code).toBe(550);
    expect((err as SmtpError).transient).toBe(false);
    expect((err as SmtpError).delivery).toBe('not-sent');
    await new Promise((r) => setTimeout(r, 300));
    const after = await server.messages();
    expect(after.length).toBe(before);
    expect(after.some((m) => m.raw.includes(tag))).toBe(false);
  });

  it('SMTPUTF8: a non-ASCII mailbox is sent with the SMTPUTF8 parameter and arrives', async () => {
    const tag = uniqueTag();
    const composed = compose(
      { from: 'ünï@example.org', to: 'δοκιμή@example.com', subject: `utf8 ${tag}`, text: 'γειά' },
      { smtpUtf8: true, eightBitMime: true },
    );
    expect(composed.smtpUtf8).toBe(true);
    const outcome = await sendMail(options(server), {
      envelope: composed.envelope,
      content: composed.bytes,
      info: { eightBit: composed.eightBit, smtpUtf8: composed.smtpUtf8 },
    });
    expect(
      clientLines(outcome.transcript).some((l) => /^MAIL FROM:<ünï@example\.org>.*SMTPUTF8/.test(l)),
    ).toBe(true);
    const [got] = await arrivalWith(server, tag);
    expect(got!.recipients).toEqual(['δοκιμή@example.com']);
    expect(got!.envelopeFrom).toBe('ünï@example.org');
    expect(got!.raw.equals(Buffer.from(composed.bytes))).toBe(true);
  });

  it('SIZE: a message over the advertised limit is refused by the client (not-sent, never arrives)', async () => {
    const small = await startChunkingServer({ sizeLimit: 20_000 });
    try {
      const big = rawMessage(['Subject: too big'], Buffer.alloc(30_000, 'a\r\n'));
      const err = await sendMail(options(small), {
        envelope: { from: 'a@example.org', to: ['b@example.com'] },
        content: big,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SmtpError);
      expect((err as SmtpError).delivery).toBe('not-sent');
      expect((err as SmtpError).message).toMatch(/at most 20000/);
      const fits = rawMessage(['Subject: fits'], Buffer.alloc(10_000, 'b\r\n'));
      const ok = await sendMail(options(small), {
        envelope: { from: 'a@example.org', to: ['b@example.com'] },
        content: fits,
      });
      expect(clientLines(ok.transcript).some((l) => /^MAIL FROM:<a@example\.org> SIZE=\d+/.test(l))).toBe(
        true,
      );
      const got = await small.waitForMessages(1);
      expect(got).toHaveLength(1);
      expect(got[0]!.raw.toString('latin1', 0, 13)).toBe('Subject: fits');
    } finally {
      await small.close();
    }
  });

  it('a batch of 20 messages over one session: 20 × BDAT LAST, one EHLO pair, all arrive', async () => {
    const tag = uniqueTag();
    const msgs: OutgoingMessage[] = Array.from({ length: 20 }, (_, i) => {
      const c = compose({
        from: 'batch@example.org',
        to: `r${i}@example.com`,
        subject: `batch ${tag} #${i}`,
        text: `message ${i}\n.\nafter a lone dot`,
      });
      return { envelope: c.envelope, content: c.bytes };
    });
    const outcome = await sendBatch(options(server), msgs);
    console.info(`[chunking] batch of 20: roundTrips=${outcome.roundTrips}`);
    expect(outcome.results.every((r) => r.ok)).toBe(true);
    const c = clientLines(outcome.transcript);
    expect(c.filter((l) => /^EHLO /.test(l))).toHaveLength(2);
    expect(c.filter((l) => /^BDAT \d+ LAST$/.test(l))).toHaveLength(20);
    expect(c.some((l) => /^DATA$/.test(l))).toBe(false);
    // one session: far fewer round trips than messages (20 transactions would be 20+ if each waited)
    expect(outcome.roundTrips).toBeLessThan(20);
    const got = await arrivalWith(server, tag, 20);
    const subjects = (await Promise.all(got.map((m) => simpleParser(m.raw)))).map((p) => p.subject).sort();
    expect(subjects).toEqual(msgs.map((_, i) => `batch ${tag} #${i}`).sort());
    for (const m of got) {
      const i = Number(/#(\d+)/.exec(m.raw.toString())?.[1]);
      expect(m.recipients).toEqual([`r${i}@example.com`]);
      expect(m.raw.equals(Buffer.from(msgs[i]!.content))).toBe(true);
    }
  });

  it('warm reuse via SmtpClient: later sends reuse the authenticated session with ≤ 2 round trips', async () => {
    const tag = uniqueTag();
    const client = new SmtpClient({ ...options(server), reuse: true, idleTimeoutMs: 10_000 });
    try {
      const trips: number[] = [];
      const reused: boolean[] = [];
      for (let i = 0; i < 3; i++) {
        const c = compose({
          from: 'warm@example.org',
          to: 'w@example.com',
          subject: `warm ${tag} ${i}`,
          text: 'x',
        });
        const o = await client.send({ envelope: c.envelope, content: c.bytes });
        trips.push(o.roundTrips);
        reused.push(o.reused);
        const lines = clientLines(o.transcript);
        if (i > 0) {
          expect(lines.some((l) => /^(EHLO|STARTTLS|AUTH)/.test(l))).toBe(false);
          expect(lines.some((l) => /^BDAT \d+ LAST$/.test(l))).toBe(true);
        }
      }
      console.info(`[chunking] warm reuse: roundTrips per send = ${trips.join(', ')}`);
      expect(reused).toEqual([false, true, true]);
      expect(trips[1]).toBeLessThanOrEqual(2);
      expect(trips[2]).toBeLessThanOrEqual(2);
      const got = await arrivalWith(server, tag, 3);
      expect(got).toHaveLength(3);
    } finally {
      await client.close();
    }
  });
});
