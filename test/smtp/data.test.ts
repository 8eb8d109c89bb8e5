import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataEncoder, encodeData, frameBdat, normalizeCrlf } from '../../functions/smtp/data.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => Buffer.from(b).toString('latin1');

/** Reference: what a server reconstructs from DATA (RFC 5321 §4.5.2). */
function unstuff(wire: string): string {
  expect(wire.endsWith('\r\n.\r\n') || wire === '.\r\n').toBe(true);
  const body = wire === '.\r\n' ? '' : wire.slice(0, -5);
  return body
    .split('\r\n')
    .map((l) => (l.startsWith('.') ? l.slice(1) : l))
    .join('\r\n');
}

describe('DATA encoding', () => {
  it('normalises lone LF and lone CR to CRLF and adds the final CRLF', () => {
    expect(dec(encodeData(enc('a\nb\rc\r\nd')))).toBe('a\r\nb\r\nc\r\nd\r\n.\r\n');
  });

  it('dot-stuffs lines starting with a dot; a lone-dot line arrives intact', () => {
    expect(dec(encodeData(enc('.\n..x\nmid.dle\n.')))).toBe('..\r\n...x\r\nmid.dle\r\n..\r\n.\r\n');
    expect(dec(encodeData(enc('.start')))).toBe('..start\r\n.\r\n');
  });

  it('empty content is just the terminator; content ending in CRLF gets no extra line', () => {
    expect(dec(encodeData(new Uint8Array()))).toBe('.\r\n');
    expect(dec(encodeData(enc('x\r\n')))).toBe('x\r\n.\r\n');
  });

  it('CR at a chunk boundary followed by LF in the next chunk is one line break', () => {
    const e = new DataEncoder({ dotStuff: true });
    const out = dec(e.push(enc('a\r'))) + dec(e.push(enc('\n.b'))) + dec(e.end());
    expect(out).toBe('a\r\n..b\r\n.\r\n');
  });

  it('8-bit bytes pass through unchanged', () => {
    const bytes = Uint8Array.from([0xc3, 0xa9, 0x0a, 0xff, 0x00, 0x2e]);
    expect([...encodeData(bytes)]).toEqual([
      0xc3, 0xa9, 0x0d, 0x0a, 0xff, 0x00, 0x2e, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a,
    ]);
  });

  it('BDAT: normalised, not dot-stuffed, framed with the exact count', () => {
    const body = normalizeCrlf(enc('.x\n.\ny'));
    expect(dec(body)).toBe('.x\r\n.\r\ny\r\n');
    expect(dec(frameBdat(body, `BDAT ${body.length} LAST`))).toBe('BDAT 10 LAST\r\n.x\r\n.\r\ny\r\n');
  });

  it('property: any chunking gives the same bytes, and unstuffing gives the normalised message', () => {
    const alphabet = fc.constantFrom(...'ab.\r\n\u00e9 '.split(''));
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (chars, cuts) => {
          const bytes = enc(chars.join(''));
          const whole = dec(encodeData(bytes));
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const e = new DataEncoder({ dotStuff: true });
          let out = '';
          let prev = 0;
          for (const c of [...points, bytes.length]) {
            out += dec(e.push(bytes.subarray(prev, c)));
            prev = c;
          }
          out += dec(e.end());
          expect(out).toBe(whole);
          // no bare CR or LF on the wire; no line that is a lone dot before the end
          expect(/\r(?!\n)|(?<!\r)\n/.test(whole)).toBe(false);
          expect(whole.slice(0, -3).split('\r\n').includes('.')).toBe(false);
          expect(unstuff(whole)).toBe(dec(normalizeCrlf(bytes)).replace(/\r\n$/, ''));
        },
      ),
      { numRuns: 500 },
    );
  });
});
