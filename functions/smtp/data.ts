/**
 * Message content on the wire.
 *
 * DATA (RFC 5321 §4.5.2): CRLF normalisation (a lone LF or a lone CR becomes CRLF), dot-stuffing (a line
 * starting with `.` gets one more `.`, so a line that is just `.` arrives intact), a final CRLF when missing,
 * then `.CRLF`. The encoder is streaming-safe: chunk boundaries may fall anywhere, even between CR and LF.
 *
 * BDAT (RFC 3030): the same normalisation without dot-stuffing, sent with its exact octet count.
 *
 * One loop does both jobs: without an output buffer it only counts, so every buffer is allocated at its exact
 * size (no 2x over-allocation kept alive by a subarray) and the message is copied once.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

interface LineState {
  atLineStart: boolean;
  prevCR: boolean;
}

/**
 * Encode `chunk` continuing from `state` into `out` at `offset`, or only count when `out` is undefined.
 * Returns the number of octets; `state` is left as it is at the end of the chunk.
 */
function encode(
  chunk: Uint8Array,
  dotStuff: boolean,
  state: LineState,
  out?: Uint8Array,
  offset = 0,
): number {
  let { atLineStart, prevCR } = state;
  let o = offset;
  for (let i = 0; i < chunk.length; i++) {
    const b = chunk[i]!;
    if (b === LF && prevCR) {
      prevCR = false; // the LF of a CRLF: the CR already wrote both
      continue;
    }
    if (b === CR || b === LF) {
      if (out) {
        out[o] = CR;
        out[o + 1] = LF;
      }
      o += 2;
      prevCR = b === CR;
      atLineStart = true;
      continue;
    }
    prevCR = false;
    if (atLineStart && dotStuff && b === DOT) {
      if (out) out[o] = DOT;
      o++;
    }
    atLineStart = false;
    if (out) out[o] = b;
    o++;
  }
  state.atLineStart = atLineStart;
  state.prevCR = prevCR;
  return o - offset;
}

/** The tail: CRLF if the content did not end with a line break, then `.CRLF` for DATA. */
function tail(dotStuff: boolean, state: LineState): number[] {
  const t = state.atLineStart ? [] : [CR, LF];
  if (dotStuff) t.push(DOT, CR, LF);
  state.atLineStart = true;
  state.prevCR = false;
  return t;
}

export class DataEncoder {
  private readonly state: LineState = { atLineStart: true, prevCR: false };
  private readonly dotStuff: boolean;

  /** `dotStuff: true` for DATA, `false` for BDAT. */
  constructor(opts: { dotStuff: boolean }) {
    this.dotStuff = opts.dotStuff;
  }

  push(chunk: Uint8Array): Uint8Array {
    const out = new Uint8Array(encode(chunk, this.dotStuff, { ...this.state }));
    encode(chunk, this.dotStuff, this.state, out);
    return out;
  }

  end(): Uint8Array {
    return Uint8Array.from(tail(this.dotStuff, this.state));
  }
}

/** Octets of the whole encoded message (content and tail), without building it. */
function encodedSize(content: Uint8Array, dotStuff: boolean): number {
  const state: LineState = { atLineStart: true, prevCR: false };
  return encode(content, dotStuff, state) + tail(dotStuff, state).length;
}

/** Whole message, after `prefix` (may be empty), → one buffer: the encoded content and its tail. */
function encodeWhole(
  content: Uint8Array,
  dotStuff: boolean,
  prefix: Uint8Array,
  size = encodedSize(content, dotStuff),
): Uint8Array {
  const out = new Uint8Array(prefix.length + size);
  out.set(prefix);
  const state: LineState = { atLineStart: true, prevCR: false };
  const o = prefix.length + encode(content, dotStuff, state, out, prefix.length);
  out.set(tail(dotStuff, state), o);
  return out;
}

/** Whole message → bytes to write after the 354, including the terminating `.CRLF`. */
export const encodeData = (content: Uint8Array): Uint8Array => encodeWhole(content, true, new Uint8Array(0));

/** Whole message → CRLF-normalised bytes (final CRLF ensured): what BDAT carries. */
export const normalizeCrlf = (content: Uint8Array): Uint8Array =>
  encodeWhole(content, false, new Uint8Array(0));

/** Octets of the CRLF-normalised message (what SIZE= announces and BDAT counts), without building it. */
export const normalizedSize = (content: Uint8Array): number => encodedSize(content, false);

/**
 * `<commandLine> CRLF` followed by the CRLF-normalised message, in one buffer (the message is copied once).
 * `size`: its `normalizedSize()` when already known.
 */
export const frameBdat = (content: Uint8Array, commandLine: string, size?: number): Uint8Array =>
  encodeWhole(content, false, new TextEncoder().encode(`${commandLine}\r\n`), size);

/** Any octet > 127 (needs 8BITMIME or BINARYMIME). */
export function hasEightBit(content: Uint8Array): boolean {
  for (let i = 0; i < content.length; i++) if (content[i]! > 127) return true;
  return false;
}
