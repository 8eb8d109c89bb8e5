/**
 * The mail catcher (real smtp-server: STARTTLS + AUTH required) and the inbox pages over real sockets, fed with a
 * hostile message: every page must show it escaped, its HTML must be served inert, attachments as opaque bytes.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleInbox } from '../../local/inbox.ts';
import {
  type CaughtMessage,
  DEV_SMTP_PASSWORD,
  DEV_SMTP_USER,
  DEV_TLS,
  type MailCatcher,
  MessageStore,
  startMailCatcher,
} from '../../local/mail-catcher.ts';

const CA = readFileSync(DEV_TLS.caPath);

/** A line-oriented SMTP conversation over a socket that can be upgraded; bounded by a per-reply timeout. */
class Conversation {
  #buf = '';
  #waiters: Array<() => void> = [];
  constructor(public socket: Socket | TLSSocket) {
    this.#attach(socket);
  }
  #attach(s: Socket | TLSSocket) {
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      this.#buf += d;
      for (const w of this.#waiters.splice(0)) w();
    });
  }
  /** Read one complete (possibly multi-line) reply. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return m[0];
      }
      if (Date.now() > deadline) throw new Error(`no SMTP reply; buffered: ${JSON.stringify(this.#buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  async cmd(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }
  async starttls(): Promise<void> {
    expect(await this.cmd('STARTTLS')).toMatch(/^220/);
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain, ca: CA, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#attach(secure);
  }
}

async function open(port: number): Promise<Conversation> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const c = new Conversation(socket);
  expect(await c.reply()).toMatch(/^220/);
  return c;
}

/** Submit one message the way a careful client does: EHLO, STARTTLS (verified), EHLO, AUTH PLAIN, MAIL…QUIT. */
async function submit(port: number, raw: string, rcpt = 'team@example.com'): Promise<string> {
  const c = await open(port);
  try {
    expect(await c.cmd('EHLO client.test')).toMatch(/STARTTLS/);
    await c.starttls();
    expect(await c.cmd('EHLO client.test')).toMatch(/AUTH PLAIN/);
    const token = Buffer.from(`\0${DEV_SMTP_USER}\0${DEV_SMTP_PASSWORD}`).toString('base64');
    expect(await c.cmd(`AUTH PLAIN ${token}`)).toMatch(/^235/);
    expect(await c.cmd('MAIL FROM:<noreply@example.com>')).toMatch(/^250/);
    expect(await c.cmd(`RCPT TO:<${rcpt}>`)).toMatch(/^250/);
    expect(await c.cmd('DATA')).toMatch(/^354/);
    const stuffed = raw.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    const done = await c.cmd(`${stuffed}\r\n.`);
    expect(done).toMatch(/^250/);
    await c.cmd('QUIT');
    return done;
  } finally {
    c.socket.destroy();
  }
}

const HOSTILE_SUBJECT = '<script>alert(1)</script> "q" & <img src=x onerror=alert(2)>';
const HOSTILE_FILENAME = '"><svg onload=alert(3)>.html';
function hostileMessage(n: number): string {
  return [
    `From: "<b onmouseover=alert(4)>Eve</b>" <eve@example.com>`,
    'To: team@example.com',
    'Reply-To: "<i>Ada</i>" <ada@example.org>',
    `Subject: ${HOSTILE_SUBJECT} #${n}`,
    `Message-ID: <hostile-${n}@example.com>`,
    'Date: Thu, 26 Nov 2026 04:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: multipart/alternative; boundary="b2"',
    '',
    '--b2',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Plain <script>alert(5)</script> text',
    '.leading dot line',
    '--b2',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<p>Hi</p><script>parent.alert(6)</script><img src="http://tracker.example/pixel.gif"><form action="http://evil.example"></form>',
    '--b2--',
    '--b1',
    `Content-Type: text/html; name="${HOSTILE_FILENAME.replace(/"/g, '\\"')}"`,
    `Content-Disposition: attachment; filename="${HOSTILE_FILENAME.replace(/"/g, '\\"')}"`,
    '',
    '<script>alert(7)</script>',
    '--b1--',
    '',
  ].join('\n');
}

let catcher: MailCatcher;
let http: Server;
let base: string;

beforeAll(async () => {
  catcher = await startMailCatcher({ port: 0, limit: 3 });
  http = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (!handleInbox(req, res, path, { store: catcher.store })) res.writeHead(404).end();
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  http.closeAllConnections();
  await new Promise<void>((r) => http.close(() => r()));
  await catcher.close();
});

describe('mail catcher', () => {
  it('refuses AUTH before STARTTLS and a wrong password after it', async () => {
    const c = await open(catcher.port);
    try {
      const ehlo = await c.cmd('EHLO client.test');
      expect(ehlo).toMatch(/STARTTLS/);
      const token = Buffer.from(`\0${DEV_SMTP_USER}\0${DEV_SMTP_PASSWORD}`).toString('base64');
      // smtp-server advertises AUTH in clear text but refuses it there (538, RFC 4954 §4 / RFC 3207).
      expect(await c.cmd(`AUTH PLAIN ${token}`)).toMatch(/^538/);
      await c.starttls();
      await c.cmd('EHLO client.test');
      const bad = Buffer.from(`\0${DEV_SMTP_USER}\0wrong`).toString('base64');
      expect(await c.cmd(`AUTH PLAIN ${bad}`)).toMatch(/^535/);
      expect(await c.cmd('MAIL FROM:<a@example.com>')).toMatch(/^530/);
    } finally {
      c.socket.destroy();
    }
  });

  it('keeps the newest messages only, newest first', async () => {
    for (let i = 1; i <= 4; i++) await submit(catcher.port, hostileMessage(i));
    const list = catcher.store.list();
    expect(list.map((m) => m.parsed.messageId)).toEqual([
      '<hostile-4@example.com>',
      '<hostile-3@example.com>',
      '<hostile-2@example.com>',
    ]);
    expect(list[0]!.session).toMatchObject({ secure: true, user: DEV_SMTP_USER });
    expect(list[0]!.envelope).toEqual({ mailFrom: 'noreply@example.com', rcptTo: ['team@example.com'] });
    expect(list[0]!.parsed.text).toContain('.leading dot line');
  });
});

describe('message store', () => {
  it('is bounded in raw bytes as well as in count (the newest message always stays)', async () => {
    const store = new MessageStore(10, 250);
    const make = async (n: number, size: number): Promise<CaughtMessage> => {
      const raw = Buffer.from(`Subject: m${n}\r\n\r\n${'x'.repeat(size)}\r\n`);
      return {
        id: `00000000-0000-0000-0000-00000000000${n}`,
        receivedAt: new Date().toISOString(),
        envelope: { mailFrom: 'a@example.com', rcptTo: ['b@example.com'] },
        session: { secure: true, user: 'dev', clientHostname: 'localhost' },
        raw,
        parsed: await simpleParser(raw),
      };
    };
    for (let i = 1; i <= 3; i++) store.add(await make(i, 80));
    expect(store.list().map((m) => m.parsed.subject)).toEqual(['m3', 'm2']);
    expect(store.bytes).toBeLessThanOrEqual(250);
    store.add(await make(4, 1000));
    expect(store.list().map((m) => m.parsed.subject)).toEqual(['m4']);
    store.clear();
    expect(store.bytes).toBe(0);
  });
});

describe('inbox pages with hostile content', () => {
  it('lists and shows the message escaped, with the HTML body only in a sandboxed iframe', async () => {
    const newest = catcher.store.list()[0]!;
    const listPage = await fetch(`${base}/inbox`);
    expect(listPage.headers.get('content-security-policy')).toContain("script-src 'self'");
    const listHtml = await listPage.text();
    expect(listHtml).toContain(
      '&lt;script&gt;alert(1)&lt;/script&gt; &quot;q&quot; &amp; &lt;img src=x onerror=alert(2)&gt; #4',
    );
    expect(listHtml).not.toMatch(/<script>alert|<img src=x|<b onmouseover/);

    const view = await fetch(`${base}/inbox/${newest.id}`);
    expect(view.status).toBe(200);
    const viewHtml = await view.text();
    expect(viewHtml).not.toMatch(/<script>(alert|parent)|<img src=x|<b onmouseover|<svg onload|<i>Ada/);
    expect(viewHtml).toContain('&lt;i&gt;Ada&lt;/i&gt;');
    expect(viewHtml).toMatch(/<iframe [^>]*sandbox=""[^>]*src="\/inbox\/[0-9a-f-]{36}\/html"/);
    // The only scripts on our pages are our own files.
    expect([...viewHtml.matchAll(/<script\b[^>]*>/g)].map((m) => m[0])).toEqual([]);

    const body = await fetch(`${base}/inbox/${newest.id}/html`);
    const csp = body.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/(^|; )sandbox($|;)/);
    expect(csp).not.toMatch(/script-src|unsafe-eval/);
    expect(await body.text()).toContain('<script>parent.alert(6)</script>');
  });

  it('serves attachments as opaque downloads with a safe filename, and the raw source', async () => {
    const newest = catcher.store.list()[0]!;
    const a = await fetch(`${base}/inbox/${newest.id}/attachments/0`);
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('application/octet-stream');
    expect(a.headers.get('x-content-type-options')).toBe('nosniff');
    const disposition = a.headers.get('content-disposition') ?? '';
    expect(disposition).toMatch(
      /^attachment; filename="[A-Za-z0-9._ -]+"; filename\*=UTF-8''[A-Za-z0-9%._~!-]+$/,
    );
    expect(await a.text()).toBe('<script>alert(7)</script>');
    expect((await fetch(`${base}/inbox/${newest.id}/attachments/9`)).status).toBe(404);

    const raw = await fetch(`${base}/inbox/${newest.id}/raw`);
    expect(raw.headers.get('content-type')).toBe('message/rfc822');
    expect(await raw.text()).toContain('Message-ID: <hostile-4@example.com>');
  });

  it('answers the JSON API: list newest first, one message parsed + raw', async () => {
    const list = (await (await fetch(`${base}/inbox/api/messages`)).json()) as {
      messages: Array<{ id: string; from: string; to: string; subject: string; date: string }>;
    };
    expect(list.messages).toHaveLength(3);
    expect(list.messages[0]).toMatchObject({ subject: `${HOSTILE_SUBJECT} #4`, to: 'team@example.com' });
    expect(list.messages[0]!.from).toContain('eve@example.com');
    expect(list.messages[0]!.date).toBe('2026-11-26T04:00:00.000Z');
    const one = (await (await fetch(`${base}/inbox/api/messages/${list.messages[0]!.id}`)).json()) as Record<
      string,
      unknown
    >;
    expect(one.replyTo).toContain('ada@example.org');
    expect(one.html).toContain('<p>Hi</p>');
    expect(one.raw).toContain(`Subject: ${HOSTILE_SUBJECT} #4`);
    expect(one.attachments).toEqual([
      expect.objectContaining({ index: 0, filename: HOSTILE_FILENAME, contentType: 'text/html' }),
    ]);
    expect((await fetch(`${base}/inbox/api/messages/00000000-0000-0000-0000-000000000000`)).status).toBe(404);
  });

  it('pushes new messages over server-sent events', async () => {
    const controller = new AbortController();
    const res = await fetch(`${base}/inbox/events`, { signal: controller.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const sent = submit(catcher.port, hostileMessage(5));
    let text = '';
    const deadline = Date.now() + 10_000;
    while (!text.includes('event: message') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    await sent;
    controller.abort();
    expect(text).toContain('event: message');
    expect(text).toContain('#5');
  });
});
