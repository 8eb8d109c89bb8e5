/**
 * Property tests (fast-check): random Unicode subjects, names, bodies and attachments compose into
 * messages that are well formed on the wire and parse back (mailparser) to the same values.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compose, MimeError } from '../../functions/mime/index.ts';
import { checkWire, fixedOptions, lf, parse } from './support.ts';

const NO_BREAK = (s: string): boolean => !/[\r\n\0]/.test(s);

/** Printable-ish Unicode: graphemes from the whole range, plus ASCII specials and white space. */
const unicodeText = (maxLength: number) =>
  fc
    .oneof(
      fc.string({ unit: 'grapheme', maxLength }),
      fc.string({ unit: 'binary', maxLength }),
      fc.string({
        unit: fc.constantFrom(
          ' ',
          '\t',
          '"',
          '\\',
          ',',
          ';',
          '(',
          ')',
          '<',
          '>',
          '=?',
          '?=',
          '_',
          'é',
          '😀',
          '日',
          '\u0301',
        ),
        maxLength,
      }),
      fc.string({ unit: 'grapheme-ascii', maxLength }),
    )
    .filter(NO_BREAK);

const bodyText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 400 }),
  fc.string({ unit: 'binary', maxLength: 400 }),
  fc
    .array(
      fc.oneof(
        fc.constantFrom('.', '..', 'From ', 'From me', ' ', '\t', '=', '\r\n', '\n', '\r', 'é', '😀'),
        fc.string({ unit: 'grapheme-ascii', minLength: 0, maxLength: 1200 }),
      ),
      { maxLength: 30 },
    )
    .map((parts) => parts.join('')),
);

// Fixed seed for reproducible CI; FC_SEED=<n> FC_RUNS=<n> to explore.
const RUNS = { numRuns: Number(process.env.FC_RUNS ?? 100), seed: Number(process.env.FC_SEED ?? 20261126) };

/**
 * White space at the ends of a header text is where parsers differ (mailparser trims the raw value before
 * decoding encoded words, so it keeps what was encoded and drops what was raw): compare trimmed.
 */
const trimmed = (s: string | undefined): string => (s ?? '').trim();

/** mailparser reports an empty part inside a multipart as "\n" (or nothing); anything else must be exact. */
function expectBody(got: string | undefined, want: string): void {
  if (want === '') expect(['', '\n', undefined]).toContain(got);
  else expect(got).toBe(want);
}

/**
 * mailparser reads raw (RFC 6532) header bytes as latin1 and trims them before decoding UTF-8: a value
 * whose last character ends in the octet 0xA0 (e.g. U+0620) loses that octet (U+00A0 is JS white space)
 * and comes back as U+FFFD. Such values, when written raw, are checked on the raw header instead.
 */
function hitsMailparserTrimDefect(s: string): boolean {
  const bytes = Buffer.from(s.trim());
  return bytes.length > 0 && bytes[bytes.length - 1] === 0xa0;
}

/** A top-level header value as written: unfolded, UTF-8. */
function rawHeaderValue(bytes: Uint8Array, name: string): string {
  const head = Buffer.from(bytes)
    .toString('utf8')
    .split('\r\n\r\n')[0]!
    .replace(/\r\n(?=[ \t])/g, '');
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line === undefined ? '' : line.slice(name.length + 1);
}

describe('properties', () => {
  it('subject, display names, bodies and attachments round-trip; the wire format is valid', async () => {
    await fc.assert(
      fc.asyncProperty(
        unicodeText(120),
        unicodeText(60),
        bodyText,
        bodyText,
        fc.array(
          fc.record({
            filename: unicodeText(80).filter((s) => s.trim() !== ''),
            content: fc.uint8Array({ maxLength: 3000 }),
          }),
          { maxLength: 3 },
        ),
        fc.constantFrom(undefined, true),
        fc.boolean(),
        async (subject, name, text, html, attachments, smtpUtf8, eightBitMime) => {
          const m = compose(
            {
              from: { name, address: 'sender@example.com' },
              to: [{ name, address: 'rcpt@example.com' }, 'other@example.com'],
              subject,
              text,
              html,
              attachments,
            },
            fixedOptions(7, { smtpUtf8, eightBitMime }),
          );
          const wire = checkWire(m.bytes, smtpUtf8 === true);
          expect(wire.problems).toEqual([]);
          if (smtpUtf8 !== true) expect(m.smtpUtf8).toBe(false);
          // Without 8BITMIME and SMTPUTF8 every octet of the message is 7-bit.
          expect(m.eightBit).toBe(Buffer.from(m.bytes).some((b) => b > 127));
          if (!eightBitMime && smtpUtf8 !== true) expect(m.eightBit).toBe(false);
          const p = await parse(m.bytes);
          const from = p.from!.value[0]!;
          expect(from.address).toBe('sender@example.com');
          if (
            smtpUtf8 &&
            hitsMailparserTrimDefect(subject) &&
            !rawHeaderValue(m.bytes, 'Subject').includes('=?')
          ) {
            expect(rawHeaderValue(m.bytes, 'Subject').trim()).toBe(subject.trim());
          } else {
            expect(trimmed(p.subject)).toBe(trimmed(subject));
          }
          if (!(smtpUtf8 && hitsMailparserTrimDefect(name))) expect(trimmed(from.name)).toBe(trimmed(name));
          expectBody(p.text, lf(text));
          // A fragment is sent as a document (the generated text alternative is tested on its own).
          const doc = /<html[\s>]/i.test(html) ? html : `<html><body>${html}</body></html>`;
          expectBody(p.html === false ? undefined : p.html, lf(doc));
          expect(p.attachments.map((a) => a.filename)).toEqual(attachments.map((a) => a.filename));
          p.attachments.forEach((a, i) => {
            expect(Buffer.from(a.content).equals(Buffer.from(attachments[i]!.content))).toBe(true);
          });
        },
      ),
      RUNS,
    );
  }, 120_000);

  it('every line ≤ 998 octets and CRLF-terminated, whatever the line lengths of the input', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'binary', maxLength: 3000 }), { maxLength: 4 }),
        fc.string({ unit: 'grapheme-ascii', maxLength: 2500 }).filter(NO_BREAK),
        fc.boolean(),
        (lines, subject, eightBitMime) => {
          const m = compose(
            { from: 'a@example.com', to: 'b@example.com', subject, text: lines.join('\n') },
            fixedOptions(3, { eightBitMime }),
          );
          expect(checkWire(m.bytes).problems).toEqual([]);
        },
      ),
      { numRuns: 60, seed: 42 },
    );
  });

  it('any CR, LF or NUL in a subject or name is a MimeError naming the field', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 20 }),
        fc.constantFrom('\r', '\n', '\0', '\r\n'),
        fc.string({ maxLength: 20 }),
        fc.constantFrom('subject', 'to[0].name', 'headers.X-Test', 'attachments[0].filename'),
        (a, bad, b, field) => {
          const v = a + bad + b;
          const input = {
            from: 'a@example.com',
            to: [{ name: field === 'to[0].name' ? v : 'n', address: 'b@example.com' }],
            subject: field === 'subject' ? v : 's',
            headers: { 'X-Test': field === 'headers.X-Test' ? v : 'x' },
            attachments: [
              { filename: field === 'attachments[0].filename' ? v : 'f', content: new Uint8Array(0) },
            ],
          };
          expect(() => compose(input, fixedOptions())).toThrow(MimeError);
          try {
            compose(input, fixedOptions());
          } catch (e) {
            expect((e as MimeError).field).toBe(field);
          }
        },
      ),
      { numRuns: 100, seed: 7 },
    );
  });

  it('the same input and random/now give the same bytes', () => {
    fc.assert(
      fc.property(unicodeText(50), fc.nat(), (subject, seed) => {
        const input = { from: 'a@example.com', to: 'b@example.com', subject, text: 'x', html: '<b>x</b>' };
        const one = compose(input, fixedOptions(seed));
        const two = compose(input, fixedOptions(seed));
        expect(Buffer.from(one.bytes).equals(Buffer.from(two.bytes))).toBe(true);
      }),
      { numRuns: 50, seed: 9 },
    );
  });
});
