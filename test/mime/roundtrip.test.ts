/**
 * Round trips through mailparser (an independent parser): what we compose comes back equal —
 * subject, names, addresses, text, html, attachment bytes and file names.
 */
import { describe, expect, it } from 'vitest';
import { compose } from '../../functions/mime/index.ts';
import {
  checkWire,
  decodeUnstructured,
  fixedOptions,
  lf,
  longestLine,
  parse,
  unicodeAddress,
} from './support.ts';

const SUBJECTS = [
  'Plain ASCII subject',
  'Emoji 😀👍🏽 and flags 🇫🇷🇯🇵 and a family 👨‍👩‍👧‍👦',
  '日本語の件名です、長い件名をテストするためにもう少し文字を足します。これで七十八文字を超えるはずです。',
  'עברית עם English מעורב — RTL ‏mark',
  'e\u0301 combining a\u0308 o\u0302 and Zalgo: Z\u0336\u0351\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309\u030a\u030b\u030c\u030d\u030e\u030f\u0310\u0311\u0312\u0313\u0314\u0315\u031a\u033d\u0346\u034a\u034b\u034c',
  'Looks like =?UTF-8?B?SGk=?= an encoded word',
  'A very long ASCII subject line that goes on and on well past the seventy-eight character folding limit, with many words, so that it must be folded more than once when written out',
  'x'.repeat(1500),
  'Ünïcödé'.repeat(150),
  'tab\tinside and  double  spaces',
  'quotes "and" \\backslashes\\ (parens) <angles>, commas; semicolons: colons',
];

describe('round trip through mailparser', () => {
  for (const [i, subject] of SUBJECTS.entries()) {
    it(`subject #${i} comes back equal`, async () => {
      for (const smtpUtf8 of [undefined, true]) {
        const m = compose(
          { from: 'a@example.com', to: 'b@example.com', subject, text: 'x' },
          fixedOptions(i, { smtpUtf8 }),
        );
        expect(checkWire(m.bytes, smtpUtf8).problems).toEqual([]);
        const p = await parse(m.bytes);
        expect(p.subject).toBe(subject);
      }
    });
  }

  it('every header line is at most 78 characters for ordinary input', () => {
    for (const [i, subject] of SUBJECTS.entries()) {
      if (i === 7) continue; // 1,500 characters without a space: encoded words, still ≤ 78
      const m = compose(
        {
          from: { name: 'Ünïcödé Sender With A Long Display Name 😀', address: 'sender@example.com' },
          to: [1, 2, 3, 4, 5].map((n) => `Recipient Number ${n} <recipient-${n}@example.com>`),
          subject,
          text: 'x',
        },
        fixedOptions(i),
      );
      for (const line of checkWire(m.bytes).headerLines) expect(line.length, line).toBeLessThanOrEqual(78);
    }
  });

  it('display names with specials, unicode and encoded-word look-alikes', async () => {
    const names = [
      'Doe, John',
      'John "Johnny" Doe',
      'Back\\slash (and parens)',
      'Jöhn Dœ',
      '山田 太郎',
      'محمد علي',
      '😀 Smiley',
      '=?UTF-8?B?SGk=?=',
      'A. Person',
      '  padded  ',
      'Very Long Display Name That Keeps Going And Going Beyond The Folding Limit Of The Header Line',
    ];
    const to = names.map((name, i) => ({ name, address: `user${i}@example.com` }));
    const m = compose({ from: 'Sender <s@example.com>', to, subject: 's', text: 'x' }, fixedOptions());
    expect(checkWire(m.bytes).problems).toEqual([]);
    const p = await parse(m.bytes);
    const got = (Array.isArray(p.to) ? p.to : [p.to!]).flatMap((a) => a.value);
    expect(got.map((a) => a.address)).toEqual(to.map((t) => t.address));
    expect(got.map((a) => a.name)).toEqual(names.map((n) => n.trim()));
  });

  it('international domains become A-labels and parse back', async () => {
    const m = compose(
      { from: 'Jöhn <john@bücher.example>', to: ['ユーザー <user@例え.jp>'], subject: 's', text: 'x' },
      fixedOptions(),
    );
    expect(m.envelope).toEqual({ from: 'john@xn--bcher-kva.example', to: ['user@xn--r8jz45g.jp'] });
    const p = await parse(m.bytes);
    expect(p.from!.value[0]!.address).toBe(unicodeAddress('john@xn--bcher-kva.example'));
    expect(p.from!.value[0]!.name).toBe('Jöhn');
  });

  it('bodies: CJK, RTL, emoji, combining marks, long lines, dots, From, trailing spaces', async () => {
    const text = [
      '日本語のテキスト。中文文本。한국어 텍스트.',
      'עברית ومرحبا بالعالم',
      'Emoji 😀👍🏽🇫🇷 👨‍👩‍👧‍👦',
      'e\u0301a\u0308',
      '.a line starting with a dot',
      '.',
      '..',
      'From the start of a line',
      'trailing spaces   ',
      'trailing tab\t',
      'x'.repeat(2000),
      'é'.repeat(2000),
      '= equals = sign =3D',
      '',
      'end',
    ].join('\n');
    const html = `<p>${text.replace(/\n/g, '<br>\n')}</p>`;
    for (const eightBitMime of [false, true]) {
      const m = compose(
        { from: 'a@example.com', to: 'b@example.com', subject: 's', text, html },
        fixedOptions(1, { eightBitMime }),
      );
      expect(checkWire(m.bytes).problems).toEqual([]);
      expect(longestLine(m.bytes)).toBeLessThanOrEqual(998);
      expect(m.eightBit).toBe(eightBitMime && Buffer.from(m.bytes).some((b) => b > 127));
      const p = await parse(m.bytes);
      expect(p.text).toBe(text);
      expect(p.html).toBe(`<html><body>${html}</body></html>`); // a fragment goes out as a document
    }
  });

  it('no line of a quoted-printable body starts with "." or "From "', async () => {
    const text = [
      '.',
      '.dot',
      'From me',
      'é From x',
      `${'a'.repeat(74)}é.`,
      `${'a'.repeat(75)}.tail`,
      'From',
    ].join('\n');
    const m = compose({ from: 'a@example.com', to: 'b@example.com', subject: 's', text }, fixedOptions());
    const body = Buffer.from(m.bytes).toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n');
    expect(m.headers.find(([n]) => n === 'Content-Transfer-Encoding')![1]).toBe('quoted-printable');
    for (const line of body.split('\r\n')) {
      expect(line.startsWith('.')).toBe(false);
      expect(line.startsWith('From ')).toBe(false);
    }
    expect((await parse(m.bytes)).text).toBe(text);
  });

  it('attachments: unicode and special file names, 1 MB of random bytes, inline image', async () => {
    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    const attachments = [
      { filename: 'résumé.pdf', content: new Uint8Array([0, 1, 2, 255, 13, 10, 13]) },
      {
        filename: '日本語のファイル名がとても長い場合でも正しく分割されるべきです.txt',
        content: Buffer.from('a\nb\r\n'),
      },
      { filename: 'quote " and \\ backslash; semicolon=equals.csv', content: new Uint8Array([65]) },
      { filename: '😀 emoji file 👨‍👩‍👧‍👦.bin', content: big },
      { filename: `${'long-ascii-name-'.repeat(8)}.zip`, content: new Uint8Array([1]) },
      { filename: 'logo.png', contentId: 'logo@example.com', content: new Uint8Array([137, 80, 78, 71]) },
    ];
    const m = compose(
      {
        from: 'a@example.com',
        to: 'b@example.com',
        subject: 's',
        text: 'see attached',
        html: '<p><img src="cid:logo@example.com"></p>',
        attachments,
      },
      fixedOptions(),
    );
    expect(checkWire(m.bytes).problems).toEqual([]);
    const p = await parse(m.bytes);
    expect(p.text).toBe('see attached');
    expect(p.html).toBe('<html><body><p><img src="cid:logo@example.com"></p></body></html>');
    const byName = new Map(p.attachments.map((a) => [a.filename, a]));
    for (const a of attachments) {
      const got = byName.get(a.filename);
      expect(got, a.filename).toBeDefined();
      expect(Buffer.from(got!.content).equals(Buffer.from(a.content)), a.filename).toBe(true);
    }
    expect(byName.get('logo.png')!.cid).toBe('logo@example.com');
    expect(byName.get('logo.png')!.related).toBe(true);
    expect(byName.get('résumé.pdf')!.contentType).toBe('application/pdf');
  });

  it('structures: text only, html only, text+html, attachments without body, inline without html', async () => {
    const base = { from: 'a@example.com', to: 'b@example.com', subject: 's' };
    const file = { filename: 'f.bin', content: new Uint8Array([1, 2, 3]) };
    const cases: Array<[object, RegExp]> = [
      [{ text: 'hi' }, /^text\/plain/],
      // HTML alone gets a generated text alternative (SpamAssassin MIME_HTML_ONLY otherwise).
      [{ html: '<b>hi</b>' }, /^multipart\/alternative/],
      [{ text: 'hi', html: '<b>hi</b>' }, /^multipart\/alternative/],
      [{ attachments: [file] }, /^multipart\/mixed/],
      [{ text: 'hi', attachments: [{ ...file, contentId: 'c@x' }] }, /^multipart\/mixed/],
      [
        { html: '<img src="cid:c@x">', attachments: [{ ...file, contentId: 'c@x' }] },
        /^multipart\/alternative/,
      ],
      [{}, /^text\/plain/],
    ];
    for (const [extra, type] of cases) {
      const m = compose({ ...base, ...extra }, fixedOptions());
      expect(m.headers.find(([n]) => n === 'Content-Type')![1]).toMatch(type);
      expect(checkWire(m.bytes).problems).toEqual([]);
      const p = await parse(m.bytes);
      const html = (extra as { html?: string }).html;
      if ('text' in extra || html === '<b>hi</b>') expect(p.text!.replace(/\n$/, '')).toBe('hi');
      if ('attachments' in extra) expect(p.attachments).toHaveLength(1);
    }
  });

  it('a top-level 7bit text without a final line break gets one (the message ends in CRLF)', async () => {
    const m = compose(
      { from: 'a@example.com', to: 'b@example.com', subject: 's', text: 'no newline' },
      fixedOptions(),
    );
    expect(Buffer.from(m.bytes).toString().endsWith('\r\n\r\nno newline\r\n')).toBe(true);
    expect(lf((await parse(m.bytes)).text!)).toBe('no newline\n');
  });

  it('extra headers: unstructured values are encoded, structured kept, order stable', async () => {
    const m = compose(
      {
        from: 'a@example.com',
        to: 'b@example.com',
        subject: 's',
        text: 'x',
        headers: {
          'List-Unsubscribe':
            '<https://example.com/unsubscribe?id=1234567890abcdef>, <mailto:unsubscribe@example.com?subject=unsubscribe>',
          'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
          'In-Reply-To': '<abc@example.com>',
          References: '<a@example.com> <b@example.com> c@example.com',
          'X-Campaign': 'Été 2026 😀',
          'auto-submitted': 'auto-generated',
        },
      },
      fixedOptions(),
    );
    expect(checkWire(m.bytes).problems).toEqual([]);
    const names = m.headers.map(([n]) => n);
    expect(names).toEqual([
      'Date',
      'Message-ID',
      'MIME-Version',
      'From',
      'To',
      'Subject',
      'List-Unsubscribe',
      'List-Unsubscribe-Post',
      'In-Reply-To',
      'References',
      'X-Campaign',
      'Auto-Submitted',
      'Content-Type',
      'Content-Transfer-Encoding',
    ]);
    const p = await parse(m.bytes);
    expect(p.inReplyTo).toBe('<abc@example.com>');
    expect(p.references).toEqual(['<a@example.com>', '<b@example.com>', '<c@example.com>']);
    expect(p.headerLines.find((h) => h.key === 'list-unsubscribe-post')?.line).toBe(
      'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
    );
    expect(p.headerLines.find((h) => h.key === 'list-unsubscribe')?.line).toBe(
      'List-Unsubscribe: <https://example.com/unsubscribe?id=1234567890abcdef>,\r\n <mailto:unsubscribe@example.com?subject=unsubscribe>',
    );
    expect(await decodeUnstructured(String(p.headers.get('x-campaign')))).toBe('Été 2026 😀');
  });

  it('Bcc is in the envelope, never in the headers; envelope deduplicates', () => {
    const m = compose(
      {
        from: 'a@example.com',
        to: ['b@Example.COM', 'c@example.com'],
        cc: 'b@example.com',
        bcc: ['secret@example.com', 'c@example.com'],
        subject: 's',
        text: 'x',
      },
      fixedOptions(),
    );
    expect(m.envelope.to).toEqual(['b@example.com', 'c@example.com', 'secret@example.com']);
    expect(Buffer.from(m.bytes).toString()).not.toMatch(/secret|^bcc:/im);
    const only = compose(
      { from: 'a@example.com', bcc: 'secret@example.com', subject: 's', text: 'x' },
      fixedOptions(),
    );
    expect(only.envelope.to).toEqual(['secret@example.com']);
    expect(only.headers.map(([n]) => n)).not.toContain('To');
    expect(Buffer.from(only.bytes).toString()).not.toMatch(/secret/);
  });
});
