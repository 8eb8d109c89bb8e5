import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_LINE_OCTETS, ReplyParser, ReplyProtocolError } from '../../functions/smtp/reply.ts';

const enc = (s: string) => new TextEncoder().encode(s);

describe('ReplyParser', () => {
  it('a malformed line after good replies in one chunk: the error carries the good replies', () => {
    let err: unknown;
    try {
      new ReplyParser().push(enc('250 first\r\n354 go on\r\nnot a reply\r\n250 never\r\n'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReplyProtocolError);
    expect((err as ReplyProtocolError).before.map((r) => [r.code, r.text])).toEqual([
      [250, 'first'],
      [354, 'go on'],
    ]);
  });

  it('parses a single-line reply with an enhanced status code', () => {
    const [r, ...rest] = new ReplyParser().push(enc('250 2.1.0 Sender OK\r\n'));
    expect(rest).toEqual([]);
    expect(r).toEqual({ code: 250, enhancedCode: '2.1.0', lines: ['2.1.0 Sender OK'], text: 'Sender OK' });
  });

  it('parses multi-line replies and keeps every line', () => {
    const p = new ReplyParser();
    expect(p.push(enc('250-mx.example.com hi\r\n250-PIPELINING\r\n'))).toEqual([]);
    const [r] = p.push(enc('250 CHUNKING\r\n'));
    expect(r!.code).toBe(250);
    expect(r!.lines).toEqual(['mx.example.com hi', 'PIPELINING', 'CHUNKING']);
    expect(r!.text).toBe('mx.example.com hi\nPIPELINING\nCHUNKING');
  });

  it('accepts a bare code with no text, and several replies in one chunk', () => {
    const rs = new ReplyParser().push(enc('250\r\n354 go ahead\r\n'));
    expect(rs.map((r) => [r.code, r.text])).toEqual([
      [250, ''],
      [354, 'go ahead'],
    ]);
  });

  it('does not take an enhanced code of another class', () => {
    const [r] = new ReplyParser().push(enc('550 2.1.0 odd\r\n'));
    expect(r!.enhancedCode).toBeUndefined();
    expect(r!.text).toBe('2.1.0 odd');
  });

  it('decodes UTF-8 split across reads', () => {
    const bytes = enc('550 Empfänger unbekannt — 受信者\r\n');
    const p = new ReplyParser();
    const out = [];
    for (const b of bytes) out.push(...p.push(Uint8Array.of(b)));
    expect(out).toHaveLength(1);
    expect(out[0]!.text).toBe('Empfänger unbekannt — 受信者');
  });

  it('rejects mismatched codes inside a multi-line reply', () => {
    expect(() => new ReplyParser().push(enc('250-a\r\n251 b\r\n'))).toThrow(ReplyProtocolError);
  });

  it('rejects garbage lines', () => {
    expect(() => new ReplyParser().push(enc('hello\r\n'))).toThrow(/malformed/);
    expect(() => new ReplyParser().push(enc('6000 x\r\n'))).toThrow(/malformed/);
    expect(() => new ReplyParser().push(enc('250x\r\n'))).toThrow(/malformed/);
  });

  it('bounds a line without end (4 KiB)', () => {
    const p = new ReplyParser();
    p.push(enc(`250 ${'a'.repeat(MAX_LINE_OCTETS - 10)}`));
    expect(() => p.push(enc('a'.repeat(100)))).toThrow(/longer than 4096/);
  });

  it('bounds a reply to 1000 lines and 64 KiB', () => {
    expect(() => new ReplyParser().push(enc('250-x\r\n'.repeat(1001)))).toThrow(/1000 lines/);
    const line = `250-${'b'.repeat(1000)}\r\n`;
    expect(() => new ReplyParser().push(enc(line.repeat(70)))).toThrow(/65536 octets/);
  });

  it('reports buffered octets (used to detect STARTTLS injection)', () => {
    const p = new ReplyParser();
    p.push(enc('220 Ready\r\n250 inj'));
    expect(p.buffered).toBe(7);
  });

  it('property: any split of a valid reply stream parses the same', () => {
    const line = fc.string({ maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, ''));
    const reply = fc.record({
      code: fc.constantFrom(220, 250, 354, 421, 450, 550),
      lines: fc.array(line, { minLength: 1, maxLength: 5 }),
    });
    fc.assert(
      fc.property(
        fc.array(reply, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (rs, cuts) => {
          const text = rs
            .map((r) =>
              r.lines.map((l, i) => `${r.code}${i === r.lines.length - 1 ? ' ' : '-'}${l}\r\n`).join(''),
            )
            .join('');
          const bytes = enc(text);
          const whole = new ReplyParser().push(bytes);
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const p = new ReplyParser();
          const parts = [];
          let prev = 0;
          for (const c of [...points, bytes.length]) {
            parts.push(...p.push(bytes.subarray(prev, c)));
            prev = c;
          }
          expect(parts).toEqual(whole);
          expect(whole.map((r) => r.code)).toEqual(rs.map((r) => r.code));
          expect(whole.map((r) => r.lines)).toEqual(rs.map((r) => r.lines));
        },
      ),
      { numRuns: 300 },
    );
  });
});
