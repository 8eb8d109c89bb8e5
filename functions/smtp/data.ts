/**
 * Message content on the wire.
 *
 * DATA (RFC 5321 §4.5.2): CRLF normalisation (a lone LF or a lone CR becomes CRLF), dot-stuffing (a line
 * starting with `.` gets one more `.`, so a line that is just `.` arrives intact), a final CRLF when missing,
 * then `.CRLF`. The encoder is streaming-safe: chunk boundaries may fall anywhere, even between CR and LF.
 *
 * BDAT (RFC 3030): the same normalisation without dot-stuffing, sent with its exact octet count.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

export class DataEncoder {
  private atLineStart = true;
  private prevCR = false;
  private readonly dotStuff: boolean;

  /** `dotStuff: true` for DATA, `false` for BDAT. */
  constructor(opts: { dotStuff: boolean }) {
    this.dotStuff = opts.dotStuff;
  }

  push(chunk: Uint8Array): Uint8Array {
    // Exact size first (no 2x over-allocation kept alive by a subarray), then fill.
    const out = new Uint8Array(this.measure(chunk));
    let o = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === CR) {
        out[o++] = CR;
        out[o++] = LF;
        this.prevCR = true;
        this.atLineStart = true;
        continue;
      }
      if (b === LF) {
        if (this.prevCR) {
          this.prevCR = false;
          continue;
        }
        out[o++] = CR;
        out[o++] = LF;
        this.atLineStart = true;
        continue;
      }
      this.prevCR = false;
      if (this.atLineStart && this.dotStuff && b === DOT) out[o++] = DOT;
      this.atLineStart = false;
      out[o++] = b;
    }
    return out.subarray(0, o);
  }

  /** Output length for `chunk` from the current state, without changing it. */
  private measure(chunk: Uint8Array): number {
    let n = 0;
    let atLineStart = this.atLineStart;
    let prevCR = this.prevCR;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === CR) {
        n += 2;
        prevCR = true;
        atLineStart = true;
      } else if (b === LF) {
        if (prevCR) prevCR = false;
        else {
          n += 2;
          atLineStart = true;
        }
      } else {
        prevCR = false;
        if (atLineStart && this.dotStuff && b === DOT) n++;
        atLineStart = false;
        n++;
      }
    }
    return n;
  }

  /** The tail: CRLF if the content did not end with a line break, then `.CRLF` for DATA. */
  end(): Uint8Array {
    const tail: number[] = [];
    if (!this.atLineStart) tail.push(CR, LF);
    if (this.dotStuff) tail.push(DOT, CR, LF);
    this.atLineStart = true;
    this.prevCR = false;
    return Uint8Array.from(tail);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Whole message → bytes to write after the 354, including the terminating `.CRLF`. */
export function encodeData(content: Uint8Array): Uint8Array {
  const enc = new DataEncoder({ dotStuff: true });
  return concat([enc.push(content), enc.end()]);
}

/** Whole message → CRLF-normalised bytes (final CRLF ensured) for BDAT and for SIZE=. */
export function normalizeCrlf(content: Uint8Array): Uint8Array {
  const enc = new DataEncoder({ dotStuff: false });
  return concat([enc.push(content), enc.end()]);
}

const encoder = new TextEncoder();
/** `BDAT <n> LAST CRLF <n octets>` in one buffer. */
export function frameBdat(body: Uint8Array, commandLine: string): Uint8Array {
  return concat([encoder.encode(`${commandLine}\r\n`), body]);
}

/** Any octet > 127 (needs 8BITMIME or BINARYMIME). */
export function hasEightBit(content: Uint8Array): boolean {
  for (let i = 0; i < content.length; i++) if (content[i]! > 127) return true;
  return false;
}

export { concat as concatBytes };
