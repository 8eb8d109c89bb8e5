/**
 * The mail the team receives from a form (issue 10, "The mail the team receives"), end to end through the handler
 * and a real smtp-server, read back by mailparser, Python's email (policy.strict) and SpamAssassin: notification
 * headers, <addr>, the EHLO name, upload filtering, the visitor's non-ASCII address without SMTPUTF8, and the
 * delivery_unknown page.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HttpResult } from '../../functions/handlers/http.ts';
import { pythonEmail, spamAssassin } from '../support/mail-tools.ts';
import { formEvent, multipart } from './events.ts';
import { type Harness, startBlackholeHarness, startHarness } from './harness.ts';

const ORIGIN = 'https://www.example.com';
const browser = { origin: ORIGIN, accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };
const script = { origin: ORIGIN, accept: 'application/json', 'sec-fetch-mode': 'cors' };

const contact = {
  to: ['team@example.com'],
  subject: 'Contact form: {{name}}',
  fields: { name: { required: true }, email: { required: true, type: 'email' }, message: {} },
  allowedOrigins: [ORIGIN],
  attachments: { maxFiles: 2, maxFileBytes: 100_000 },
};
const config = {
  forms: {
    contact,
    pdfOnly: { ...contact, attachments: { ...contact.attachments, allowedTypes: ['application/pdf'] } },
    lost: { ...contact, to: ['blackhole@example.com'] },
  },
};

const PDF = Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n', 'latin1');
const PE = Buffer.concat([Buffer.from('MZ'), Buffer.from([0x90, 0, 3, 0, 0, 0, 4, 0]), Buffer.from('PE')]);

let h: Harness;
let ascii: Harness;

beforeAll(async () => {
  // "blackhole" recipients never get an answer to the end of data (delivery unknown).
  h = await startBlackholeHarness(config, { SMTP_REUSE: 'false' });
});
afterAll(async () => {
  await h?.close();
});
beforeEach(() => {
  h.srv.messages.length = 0;
});

async function post(
  on: Harness,
  formId: string,
  fields: Record<string, string>,
  files: Array<{ filename: string; type: string; content: Buffer }> = [],
  headers: Record<string, string> = script,
  timeoutMs?: number,
): Promise<HttpResult> {
  const mp = multipart(
    Object.entries(fields),
    files.map((f) => ({ field: 'upload', ...f })),
  );
  const event = formEvent(formId, { headers: { 'content-type': mp.contentType, ...headers }, body: mp.body });
  return (await on.invoke(event, timeoutMs)) as HttpResult;
}

const visitor = { name: 'Ada', email: 'ada@visitor.example', message: 'Hello from the form.' };
const lastSummary = (on: Harness) => on.logs.filter((l) => l.entryPoint === 'http_form').at(-1)!;

describe('the notification as the team receives it', () => {
  it('Auto-Submitted and X-Auto-Response-Suppress, To: <addr>, EHLO with the sender domain; clean to Python and SpamAssassin', async () => {
    const res = await post(h, 'contact', visitor);
    expect(res.statusCode).toBe(200);
    const [got] = h.srv.messages;
    expect(got!.ehlo).toBe('example.com'); // the secret's from is noreply@example.com
    const raw = got!.raw.toString('latin1');
    expect(raw).toMatch(/^Auto-Submitted: auto-generated\r$/m);
    expect(raw).toMatch(/^X-Auto-Response-Suppress: All\r$/m);
    expect(raw).toMatch(/^To: <team@example\.com>\r$/m);
    const py = pythonEmail(got!.raw);
    expect(py.defects).toEqual([]);
    expect(py.headers['Auto-Submitted']).toEqual(['auto-generated']);
    expect(py.addresses['Reply-To']).toEqual([{ name: '', address: 'ada@visitor.example' }]);
    // As the next hop (an MX) records it: a Received field naming the EHLO name the server saw.
    const atMx = (helo: string) =>
      Buffer.concat([
        Buffer.from(
          `Received: from ${helo} (mail.example.org [192.0.2.10])\r\n\tby mx.example.net with ESMTPS id 4AB12; ` +
            'Tue, 1 Dec 2026 20:00:00 +0000\r\n',
        ),
        got!.raw,
      ]);
    const sa = spamAssassin(atMx(got!.ehlo));
    for (const rule of [
      'TO_NO_BRKTS_HTML_ONLY',
      'TO_NO_BRKTS_HTML_IMG',
      'MIME_HTML_ONLY',
      'HELO_LOCALHOST',
    ]) {
      expect(sa.rules).not.toContain(rule);
    }
    expect(spamAssassin(atMx('localhost')).rules).toContain('HELO_LOCALHOST'); // the rule can fire here
  });
});

describe('a visitor address with a non-ASCII local part', () => {
  const jurgen = { ...visitor, email: 'jürgen@visitor.example' };

  it('server with SMTPUTF8: Reply-To carries it (MAIL … SMTPUTF8)', async () => {
    expect((await post(h, 'contact', jurgen)).statusCode).toBe(200);
    const [got] = h.srv.messages;
    expect(got!.mailParams).toHaveProperty('SMTPUTF8');
    expect(got!.raw.toString('utf8')).toMatch(/^Reply-To: <jürgen@visitor\.example>\r$/m);
  });
});

describe('uploads', () => {
  it('setup.exe, executable content under a PDF name, and invoice.pdf.html are refused (400), nothing sent', async () => {
    const cases = [
      { filename: 'setup.exe', type: 'application/octet-stream', content: PDF },
      { filename: 'invoice.pdf', type: 'application/pdf', content: PE },
      {
        filename: 'invoice.pdf.html',
        type: 'text/html',
        content: Buffer.from('<html><body>x</body></html>'),
      },
    ];
    for (const file of cases) {
      const res = await post(h, 'contact', visitor, [file]);
      expect(res.statusCode, file.filename).toBe(400);
      const problem = JSON.parse(String(res.body));
      expect(problem.errors[0]).toMatchObject({ field: 'upload', code: 'file_type_blocked' });
      expect(String(res.body)).not.toContain(file.filename);
    }
    expect(h.srv.messages).toHaveLength(0);
  });

  it('the type comes from the content (a PDF the browser called text/html goes as application/pdf); text gets a charset', async () => {
    const res = await post(h, 'contact', visitor, [
      { filename: 'scan.pdf', type: 'text/html', content: PDF },
      { filename: 'notes.txt', type: 'application/octet-stream', content: Buffer.from('Grüße\n') },
    ]);
    expect(res.statusCode).toBe(200);
    const py = pythonEmail(h.srv.messages[0]!.raw);
    expect(py.defects).toEqual([]);
    const files = py.parts.filter((p) => p.disposition === 'attachment');
    expect(files.map((p) => [p.filename, p.contentType, p.charset])).toEqual([
      ['scan.pdf', 'application/pdf', null],
      ['notes.txt', 'text/plain', 'utf-8'],
    ]);
  });

  it('attachments.allowedTypes narrows the form: a text file is refused where only PDFs are taken', async () => {
    const txt = { filename: 'notes.txt', type: 'text/plain', content: Buffer.from('hi\n') };
    const res = await post(h, 'pdfOnly', visitor, [txt]);
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(String(res.body)).errors[0]).toMatchObject({ code: 'file_type_not_allowed' });
    const pdf = { filename: 'scan.pdf', type: 'application/pdf', content: PDF };
    expect((await post(h, 'pdfOnly', visitor, [pdf])).statusCode).toBe(200);
  });
});

describe('delivery unknown, as a browser sees it', () => {
  it('the page says the message may have arrived and not to send it again', async () => {
    const res = await post(h, 'lost', visitor, [], browser, 4000);
    expect(res.statusCode).toBe(502);
    const page = String(res.body);
    expect(page).toContain('<title>Your message may have been sent</title>');
    expect(page).toMatch(/may have arrived/);
    expect(page).toMatch(/do not send it again/);
    expect(page).not.toMatch(/try again/i);
    expect(lastSummary(h)).toMatchObject({ code: 'delivery_unknown', outcome: 'unknown' });
  });
});

describe('a visitor address with a non-ASCII local part, server without SMTPUTF8', () => {
  const jurgen = { ...visitor, email: 'jürgen@visitor.example' };
  // Its own harness, started last: a harness points the process's Secrets Manager endpoint at itself.
  beforeAll(async () => {
    ascii = await startHarness({ config, env: { SMTP_REUSE: 'false' }, smtp: { hideSMTPUTF8: true } });
  });
  afterAll(async () => {
    await ascii?.close();
  });

  it('server without SMTPUTF8: sent anyway, without that Reply-To, the address kept in the body; same round trips', async () => {
    expect((await post(ascii, 'contact', visitor)).statusCode).toBe(200);
    const asciiTrips = lastSummary(ascii).roundTrips;
    expect((await post(ascii, 'contact', jurgen)).statusCode).toBe(200);
    expect(ascii.srv.messages).toHaveLength(2);
    const got = ascii.srv.messages[1]!;
    expect(got.mailParams).not.toHaveProperty('SMTPUTF8');
    const py = pythonEmail(got.raw);
    expect(py.defects).toEqual([]);
    expect(py.headers['Reply-To']).toBeUndefined();
    expect(py.parts.find((p) => p.contentType === 'text/plain')!.text).toContain(
      'email: jürgen@visitor.example',
    );
    const summary = lastSummary(ascii);
    expect(summary).toMatchObject({ outcome: 'sent', withoutSmtpUtf8: true, attempts: 1 });
    expect(summary.roundTrips).toBe(asciiTrips);
    // the visitor's local part is in no log line
    expect(ascii.rawLog.join('\n')).not.toContain('jürgen');
  });
});
