/**
 * The encodings themselves: RFC 2047 encoded words (size, character boundaries, B/Q choice),
 * RFC 2045 transfer encodings, RFC 5322 folding limits, RFC 2231 continuations, MIME boundaries.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EncodedWordSource } from '../../functions/mime/encoded-word.ts';
import { compose, MimeError } from '../../functions/mime/index.ts';
import { contentTypeName, dispositionFileName } from '../../functions/mime/parameter.ts';
import { encodeQuotedPrintable, encodeTextBody } from '../../functions/mime/transfer-encoding.ts';
import { checkWire, decodeUnstructured, fixedOptions, parse } from './support.ts';

const fatal = new TextDecoder('utf-8', { fatal: true });
const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Independent decoding of one encoded word (throws on a split UTF-8 sequence). */
function decodeWord(word: string): string {
  const m = /^=\?UTF-8\?([BQ])\?([^?]*)\?=$/.exec(word);
  if (!m) throw new Error(`not an encoded word: ${word}`);
  const bytes =
    m[1] === 'B'
      ? Buffer.from(m[2]!, 'base64')
      : Buffer.from(
          m[2]!
            .replace(/_/g, ' ')
            .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
          'latin1',
        );
  return fatal.decode(bytes);
}

function allWords(text: string, room: number[]): string[] {
  const src = new EncodedWordSource(text);
  const words: string[] = [];
  let i = 0;
  while (!src.done) {
    const w = src.next(room[i++ % room.length]!) ?? src.next(75);
    words.push(w!);
  }
  return words;
}

describe('RFC 2047 encoded words', () => {
  it('each word ≤ 75 characters, holds whole characters, and words split at grapheme boundaries', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'grapheme', maxLength: 300 }),
          fc.string({ unit: 'binary', maxLength: 300 }),
        ),
        fc.array(fc.integer({ min: 12, max: 90 }), { minLength: 1, maxLength: 5 }),
        (text, room) => {
          const words = allWords(text, room);
          for (const w of words) expect(w.length).toBeLessThanOrEqual(75);
          const decoded = words.map(decodeWord); // throws if a UTF-8 sequence was split
          expect(decoded.join('')).toBe(text);
          // Each cut is a grapheme boundary unless a single grapheme is larger than a whole word.
          const boundaries = new Set([...segmenter.segment(text)].map((s) => s.index));
          let offset = 0;
          for (const d of decoded.slice(0, -1)) {
            offset += d.length;
            if (!boundaries.has(offset)) {
              const cluster = [...segmenter.segment(text)].find(
                (s) => s.index < offset && s.index + s.segment.length > offset,
              )!;
              expect(Buffer.byteLength(cluster.segment)).toBeGreaterThan(20);
            }
          }
        },
      ),
      { numRuns: 200, seed: 3 },
    );
  });

  it('never splits a surrogate pair or a family emoji', () => {
    const text = '👨‍👩‍👧‍👦'.repeat(6);
    const words = allWords(text, [75]);
    for (const w of words)
      expect([...segmenter.segment(decodeWord(w))].every((s) => s.segment === '👨‍👩‍👧‍👦')).toBe(true);
  });

  it('chooses Q for mostly ASCII and B for mostly non-ASCII', () => {
    expect(new EncodedWordSource('Café au lait').encoding).toBe('Q');
    expect(new EncodedWordSource('日本語の件名').encoding).toBe('B');
  });

  it('Q words use only the characters allowed in a phrase', () => {
    const w = new EncodedWordSource('a_b=c?d"e(f),g.h é', 'Q').next(75)!;
    expect(w).toMatch(/^=\?UTF-8\?Q\?[A-Za-z0-9!*+\-/=_]+\?=$/);
    expect(decodeWord(w)).toBe('a_b=c?d"e(f),g.h é');
  });
});

describe('RFC 2045 transfer encodings', () => {
  const enc = (s: string, eightBit = false) => encodeTextBody(Buffer.from(s), eightBit);

  it('7bit for ASCII with lines ≤ 998 octets; quoted-printable beyond', () => {
    expect(enc(`${'a'.repeat(998)}\r\nb`).encoding).toBe('7bit');
    expect(enc(`${'a'.repeat(999)}\r\nb`).encoding).toBe('quoted-printable');
  });

  it('8bit only when 8BITMIME is offered and lines fit', () => {
    expect(enc('héllo wörld, this is mostly ASCII text').encoding).toBe('quoted-printable');
    expect(enc('héllo wörld, this is mostly ASCII text', true).encoding).toBe('8bit');
    expect(enc(`${'é'.repeat(500)}`, true).encoding).toBe('base64'); // 1,000 octets on one line
    expect(enc('日本語のテキスト').encoding).toBe('base64');
  });

  it('NUL is never sent as 7bit/8bit', () => {
    expect(enc('a\0b').encoding).not.toMatch(/bit$/);
    expect(enc('a\0b', true).encoding).not.toMatch(/bit$/);
    expect(enc('a long ASCII line with one NUL \0 in it').encoding).toBe('quoted-printable');
  });

  it('quoted-printable: =, trailing white space, line starts, 76-character lines', () => {
    const qp = (s: string) => encodeQuotedPrintable(Buffer.from(s)).toString('latin1');
    expect(qp('a=b')).toBe('a=3Db');
    expect(qp('end \r\nx\t')).toBe('end=20\r\nx=09');
    expect(qp('.\r\nFrom here\r\nFrom\r\nFromage')).toBe('=2E\r\n=46rom here\r\nFrom\r\nFromage');
    const long = qp(`${'a'.repeat(200)} é`);
    for (const line of long.split('\r\n')) expect(line.length).toBeLessThanOrEqual(76);
    // A soft break never splits an =XX escape.
    for (const line of qp('é'.repeat(100)).split('\r\n')) expect(line).toMatch(/^(=[0-9A-F]{2})*=?$/);
  });

  it('quoted-printable output is allocated at its exact size (not the 3× worst case)', () => {
    const text = Buffer.from(`${'a'.repeat(1000)}\r\n`.repeat(1024)); // lines over 998: quoted-printable
    const qp = encodeQuotedPrintable(text);
    expect(qp.length).toBeLessThan(text.length * 1.05);
    expect(qp.buffer.byteLength).toBe(qp.length); // nothing larger kept alive behind the view
    const escaped = encodeQuotedPrintable(Buffer.alloc(10_000, 0xff));
    expect(escaped.length).toBe(30_000 + 3 * Math.floor((30_000 - 1) / 75));
    expect(escaped.buffer.byteLength).toBe(escaped.length);
  });

  it('base64 lines are 76 characters', async () => {
    const content = new Uint8Array(1000).map((_, i) => i);
    const m = compose(
      {
        from: 'a@example.com',
        to: 'b@example.com',
        subject: 's',
        attachments: [{ filename: 'x.bin', content }],
      },
      fixedOptions(),
    );
    const lines = Buffer.from(m.bytes).toString('latin1').split('\r\n');
    const b64 = lines.filter((l) => /^[A-Za-z0-9+/=]{60,}$/.test(l));
    expect(b64.length).toBeGreaterThan(10);
    for (const l of b64.slice(0, -1)) expect(l.length).toBe(76);
    expect(Buffer.from((await parse(m.bytes)).attachments[0]!.content).equals(Buffer.from(content))).toBe(
      true,
    );
  });
});

describe('RFC 5322 header limits', () => {
  it('folds at white space to 78 characters; an unbreakable structured value up to 998 still goes', () => {
    const url = `<https://example.com/${'x'.repeat(900)}>`;
    const m = compose(
      {
        from: 'a@example.com',
        to: 'b@example.com',
        subject: 's',
        text: 'x',
        headers: { 'List-Unsubscribe': url },
      },
      fixedOptions(),
    );
    const wire = checkWire(m.bytes);
    expect(wire.problems).toEqual([]);
    expect(wire.headerLines).toContain(`List-Unsubscribe: ${url}`);
  });

  it('a structured value that cannot be folded under 998 octets is refused, naming the field', () => {
    const url = `<https://example.com/${'x'.repeat(1000)}>`;
    let err: unknown;
    try {
      compose(
        {
          from: 'a@example.com',
          to: 'b@example.com',
          subject: 's',
          text: 'x',
          headers: { 'List-Unsubscribe': url },
        },
        fixedOptions(),
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MimeError);
    expect(err).toMatchObject({ field: 'headers.List-Unsubscribe', code: 'line_too_long' });
  });

  it('a long unstructured word becomes encoded words rather than a long line', async () => {
    const m = compose(
      {
        from: 'a@example.com',
        to: 'b@example.com',
        subject: 'x'.repeat(3000),
        text: 'x',
        headers: { 'X-Long': 'y'.repeat(3000) },
      },
      fixedOptions(),
    );
    for (const line of checkWire(m.bytes).headerLines) expect(line.length).toBeLessThanOrEqual(78);
    // and nothing was lost on the way
    const p = await parse(m.bytes);
    expect(p.subject).toBe('x'.repeat(3000));
    expect(await decodeUnstructured(String(p.headers.get('x-long')))).toBe('y'.repeat(3000));
  });

  it('many recipients fold after commas', () => {
    const to = Array.from({ length: 50 }, (_, i) => `"Recipient, Number ${i}" <r${i}@example.com>`);
    const m = compose({ from: 'a@example.com', to, subject: 's', text: 'x' }, fixedOptions());
    const lines = checkWire(m.bytes).headerLines;
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(78);
    expect(m.envelope.to).toHaveLength(50);
  });
});

describe('file name parameters: each name written once', () => {
  it('printable ASCII names are one plain quoted parameter, also when long; `"` and `\\` take RFC 2231', () => {
    expect(dispositionFileName('a "b".csv')).toEqual([`filename*=UTF-8''a%20%22b%22.csv`]);
    expect(dispositionFileName('report.pdf')).toEqual(['filename="report.pdf"']);
    expect(contentTypeName('report.pdf')).toEqual(['name="report.pdf"']);
    const long = `${'long ascii name '.repeat(8)}.zip`;
    expect(dispositionFileName(long)).toEqual([`filename="${long}"`]);
  });

  it('RFC 2231 continuations hold whole characters, fit on a line, and have no ASCII fallback beside them', () => {
    const name = '😀'.repeat(10) + 'ü'.repeat(30) + '.txt';
    const sections = dispositionFileName(name);
    expect(sections.length).toBeGreaterThan(1);
    let joined = '';
    sections.forEach((p, i) => {
      expect(p.length).toBeLessThanOrEqual(76);
      const m =
        i === 0 ? /^filename\*0\*=UTF-8''(.*)$/.exec(p) : new RegExp(`^filename\\*${i}\\*=(.*)$`).exec(p);
      expect(m).not.toBeNull();
      fatal.decode(Buffer.from(decodeURIComponent(m![1]!))); // each section is whole characters
      joined += m![1];
    });
    expect(decodeURIComponent(joined)).toBe(name);
  });

  it('a non-ASCII Content-Type name is RFC 2047 words in one quoted string', async () => {
    const name = 'Übersicht für die Buchhaltung — März 2026, endgültige Fassung.pdf';
    const param = contentTypeName(name).join(' ');
    const m = /^name="((?:=\?UTF-8\?[BQ]\?[^?]*\?=)(?: =\?UTF-8\?[BQ]\?[^?]*\?=)*)"$/.exec(param);
    expect(m, param).not.toBeNull();
    for (const w of m![1]!.split(' ')) expect(w.length).toBeLessThanOrEqual(75);
    expect(await decodeUnstructured(m![1]!)).toBe(name);
  });
});

describe('MIME boundaries', () => {
  it('a boundary found in a 7bit part is replaced by another', async () => {
    const clash = `--=_${'00'.repeat(12)}`;
    let calls = 0;
    const random = (n: number) => (calls++ < 2 ? new Uint8Array(n) : new Uint8Array(n).fill(calls));
    const text = `before\n${clash}\nafter`;
    const m = compose(
      { from: 'a@example.com', to: 'b@example.com', subject: 's', text, html: '<p>x</p>' },
      { random },
    );
    const ct = m.headers.find(([n]) => n === 'Content-Type')![1];
    expect(ct).not.toContain('00'.repeat(12));
    expect((await parse(m.bytes)).text).toBe(text);
  });

  it('a random source that keeps repeating is an error, not a broken message', () => {
    const random = (n: number) => new Uint8Array(n);
    expect(() =>
      compose(
        {
          from: 'a@example.com',
          to: 'b@example.com',
          subject: 's',
          text: 'x',
          html: 'y',
          attachments: [{ filename: 'f', content: new Uint8Array(1) }],
        },
        { random },
      ),
    ).toThrow(MimeError);
  });
});
