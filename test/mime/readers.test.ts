/**
 * The mail as other programs read it: Python's `email` (policy.strict), SpamAssassin (local tests), ripmime and
 * munpack. Each finding of issue 10 "The mail the team receives" that concerns composition is a case here.
 */
import { describe, expect, it } from 'vitest';
import { compose, type MessageInput } from '../../functions/mime/index.ts';
import {
  munpackFiles,
  pythonEmail,
  pythonEmails,
  ripmimeFiles,
  spamAssassin,
} from '../support/mail-tools.ts';
import { fixedOptions, parse } from './support.ts';

const base = { from: 'Website <noreply@example.com>', subject: 'Contact form: Ada' };

describe('SpamAssassin (spamassassin -L)', () => {
  it('To is written <addr>: no TO_NO_BRKTS_* on HTML mail', () => {
    const m = compose(
      { ...base, to: 'team@example.com', html: '<p>Hello from the contact form.</p>' },
      fixedOptions(),
    );
    expect(Buffer.from(m.bytes).toString('latin1')).toMatch(/^To: <team@example\.com>\r$/m);
    const sa = spamAssassin(m.bytes);
    expect(sa.rules.filter((r) => r.startsWith('TO_NO_BRKTS'))).toEqual([]);
  });

  it('HTML-only input gets a text alternative and a document: no MIME_HTML_ONLY, no HTML_MIME_NO_HTML_TAG', async () => {
    const html = '<h1>Order</h1><p>Your order <b>1234</b> has shipped &amp; is on its way.</p>';
    const m = compose({ ...base, to: 'team@example.com', html }, fixedOptions());
    const sa = spamAssassin(m.bytes);
    expect(sa.rules).not.toContain('MIME_HTML_ONLY');
    expect(sa.rules).not.toContain('HTML_MIME_NO_HTML_TAG');
    expect(sa.rules).not.toContain('MPART_ALT_DIFF');
    const p = await parse(m.bytes);
    expect(p.text).toBe('Order\n\nYour order 1234 has shipped & is on its way.\n');
    expect(p.html).toBe(`<html><body>${html}</body></html>`);
    const py = pythonEmail(m.bytes);
    expect(py.defects).toEqual([]);
    expect(py.parts.map((x) => x.contentType)).toEqual(['multipart/alternative', 'text/plain', 'text/html']);
  });
});

const NAMES = [
  'report.pdf',
  'data "quoted".csv',
  `${'long ascii name '.repeat(6)}final.zip`,
  '報告書.txt',
  'Rechnung März 2026 — Übersicht und Details für die Buchhaltung.pdf',
];

function withAttachments(names: string[]): MessageInput {
  return {
    ...base,
    to: 'team@example.com',
    text: 'Files attached.',
    attachments: names.map((filename, i) => ({
      filename,
      contentType: 'application/octet-stream',
      content: new Uint8Array([i + 1, 2, 3]),
    })),
  };
}

describe('attachment names: written once', () => {
  it('Python reads each full name, with no duplicate parameter (no defect at all)', () => {
    const m = compose(withAttachments(NAMES), fixedOptions());
    const py = pythonEmail(m.bytes);
    expect(py.defects).toEqual([]);
    const files = py.parts.filter((x) => x.disposition === 'attachment');
    expect(files.map((x) => x.filename)).toEqual(NAMES);
    expect(files.map((x) => x.name)).toEqual(NAMES);
    for (const f of files) {
      expect(f.contentTypeParams.filter((k) => k.startsWith('name'))).toHaveLength(1);
      expect(new Set(f.dispositionParams.map((k) => k.replace(/\*.*$/, '')))).toEqual(new Set(['filename']));
    }
  });

  it('ripmime writes exactly one file per attachment, under its full name', () => {
    // ripmime decodes RFC 2047 before it parses parameters, so a `"` in a name (which Windows forbids in file
    // names anyway) cuts it short; it is left out here.
    const names = NAMES.filter((n) => !n.includes('"'));
    const m = compose(withAttachments(names), fixedOptions());
    expect(ripmimeFiles(m.bytes)).toEqual([...names].sort());
  });

  it('munpack writes ASCII names in full, long ones too (it decodes neither RFC 2231 nor RFC 2047)', () => {
    const ascii = NAMES.filter((n) => /^[\x20-\x7e]*$/.test(n) && !n.includes('"'));
    const m = compose(withAttachments(ascii), fixedOptions());
    // munpack writes each space of a name as "X".
    expect(munpackFiles(m.bytes)).toEqual(ascii.map((n) => n.replace(/ /g, 'X')).sort());
  });

  it('a text attachment without a charset says utf-8 when its bytes are UTF-8', () => {
    const m = compose(
      {
        ...base,
        to: 'team@example.com',
        text: 'x',
        attachments: [{ filename: 'notes.txt', content: Buffer.from('Grüße\n') }],
      },
      fixedOptions(),
    );
    const part = pythonEmail(m.bytes).parts.find((x) => x.filename === 'notes.txt')!;
    expect(part.contentType).toBe('text/plain');
    expect(part.charset).toBe('utf-8');
    expect(part.text).toBe('Grüße\n');
  });
});

describe('folding encoded words', () => {
  const prefixes = Array.from({ length: 48 }, (_, i) => 'x'.repeat(i + 1));

  it('a short non-ASCII display name is never split, wherever it falls on the line (Python reads it whole)', () => {
    const cases = ['محمد', 'Jöhn Dœ', '山田 太郎', 'Zoë Ångström-Müller'].flatMap((name) =>
      prefixes.map((prefix) => ({ prefix, name })),
    );
    const messages = cases.map(({ prefix, name }) =>
      compose(
        {
          ...base,
          to: [
            { name: prefix, address: 'a@example.com' },
            { name, address: 'b@example.com' },
          ],
          text: 'x',
        },
        fixedOptions(),
      ),
    );
    pythonEmails(messages.map((m) => m.bytes)).forEach((py, i) => {
      const { prefix, name } = cases[i]!;
      expect(py.defects).toEqual([]);
      expect(
        py.addresses.To!.map((a) => a.name),
        `${prefix} / ${name}`,
      ).toEqual([prefix, name]);
    });
  });

  it('a long subject is split at spaces where it can be, and reads back exactly', async () => {
    const subject = 'Grüße aus Köln — Anfrage über das Kontaktformular zur Bestellung Nummer 12345 für März';
    for (const prefix of ['', 'Re:', 'Re: Fwd: [Ticket 123]']) {
      const s = prefix ? `${prefix} ${subject}` : subject;
      const m = compose({ ...base, to: 'team@example.com', subject: s, text: 'x' }, fixedOptions());
      expect(pythonEmail(m.bytes).headers.Subject).toEqual([s]);
      expect((await parse(m.bytes)).subject).toBe(s);
      const head = Buffer.from(m.bytes).toString('latin1').split('\r\n\r\n')[0]!;
      const value = /^Subject:(.*(?:\r\n[ \t].*)*)/m.exec(head)![1]!;
      const words = [...value.matchAll(/=\?UTF-8\?([BQ])\?([^?]*)\?=/g)].map(([, enc, payload]) =>
        enc === 'B'
          ? Buffer.from(payload!, 'base64').toString('utf8')
          : Buffer.from(
              payload!
                .replace(/_/g, ' ')
                .replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))),
              'latin1',
            ).toString('utf8'),
      );
      expect(words.length).toBeGreaterThan(1);
      for (const w of words.slice(0, -1)) expect(w, JSON.stringify(words)).toMatch(/ $/);
    }
  });
});
