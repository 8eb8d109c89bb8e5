/**
 * RFC 2045 §6 content transfer encodings, and the choice between them for a text body:
 * - `7bit` when every octet is ASCII (no NUL) and every line is at most 998 octets;
 * - `8bit` for UTF-8 text when the server offers 8BITMIME (RFC 6152) and lines fit;
 * - otherwise `quoted-printable`, unless it is over 20% larger than `base64`.
 * Line breaks in text are normalised to CRLF first (bare CR and bare LF included).
 */

export type TransferEncoding = '7bit' | '8bit' | 'quoted-printable' | 'base64';

export const MAX_LINE_OCTETS = 998;
const QP_LINE = 76;
const B64_LINE = 76;

/** CRLF, bare CR and bare LF all become CRLF. */
export function normalizeLineBreaks(text: string): string {
  return text.replace(/\r\n|\r|\n/g, '\r\n');
}

/** Base64 in lines of 76 characters separated by CRLF (no trailing CRLF). */
export function encodeBase64(bytes: Uint8Array): Buffer {
  const b64 = Buffer.from(
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
    'latin1',
  );
  const lines = Math.ceil(b64.length / B64_LINE);
  const out = Buffer.allocUnsafe(b64.length + 2 * Math.max(0, lines - 1));
  let o = 0;
  for (let i = 0; i < b64.length; i++) {
    if (i > 0 && i % B64_LINE === 0) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    }
    out[o++] = b64[i]!;
  }
  return out;
}

function base64Length(n: number): number {
  const chars = Math.ceil(n / 3) * 4;
  return chars + 2 * Math.max(0, Math.ceil(chars / B64_LINE) - 1);
}

const HEX_OCTETS = Buffer.from('0123456789ABCDEF', 'latin1');

/**
 * Quoted-printable (RFC 2045 §6.7) of CRLF-normalised bytes: CRLF stays a hard line break, output lines
 * are at most 76 characters, `=` and trailing white space are encoded, and — so the text survives
 * naive dot handling and mbox "From " quoting — a `.` or the `F` of `From ` that would start a line is
 * encoded too. A soft line break never splits an `=XX` escape.
 */
export function encodeQuotedPrintable(bytes: Uint8Array): Buffer {
  // Two passes over the input, the first only counting: the output is allocated at its exact size (sizing for the
  // worst case, 3 characters per octet plus soft breaks, kept about 3× the input alive with every message).
  const out = Buffer.allocUnsafe(quotedPrintable(bytes));
  quotedPrintable(bytes, out);
  return out;
}

/** Encodes `bytes` into `out` (when given); returns the encoded length. */
function quotedPrintable(bytes: Uint8Array, out?: Buffer): number {
  const n = bytes.length;
  let o = 0;
  let col = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === 0x0d && bytes[i + 1] === 0x0a) {
      if (out) out.writeUInt16BE(0x0d0a, o);
      o += 2;
      col = 0;
      i++;
      continue;
    }
    const lastInLine = i + 1 >= n || (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a);
    const literal = (b >= 0x21 && b <= 0x7e && b !== 0x3d) || ((b === 0x20 || b === 0x09) && !lastInLine);
    if (col + (literal ? 1 : 3) > (lastInLine ? QP_LINE : QP_LINE - 1)) {
      if (out) {
        out[o] = 0x3d;
        out.writeUInt16BE(0x0d0a, o + 1);
      }
      o += 3;
      col = 0;
    }
    const lineStart = col === 0 && (b === 0x2e || (b === 0x46 && startsFrom(bytes, i, n)));
    if (literal && !lineStart) {
      if (out) out[o] = b;
      o += 1;
      col += 1;
    } else {
      if (out) {
        out[o] = 0x3d;
        out[o + 1] = HEX_OCTETS[b >> 4]!;
        out[o + 2] = HEX_OCTETS[b & 15]!;
      }
      o += 3;
      col += 3;
    }
  }
  return o;
}

/** `From ` at index j (the space is on the same line by construction). */
function startsFrom(b: Uint8Array, j: number, n: number): boolean {
  return j + 4 < n && b[j + 1] === 0x72 && b[j + 2] === 0x6f && b[j + 3] === 0x6d && b[j + 4] === 0x20;
}

interface TextStats {
  ascii: boolean;
  nul: boolean;
  longestLine: number;
}

function stats(bytes: Uint8Array): TextStats {
  let ascii = true;
  let nul = false;
  let longestLine = 0;
  let lineStart = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b > 0x7f) ascii = false;
    else if (b === 0) nul = true;
    else if (b === 0x0d && bytes[i + 1] === 0x0a) {
      longestLine = Math.max(longestLine, i - lineStart);
      lineStart = i + 2;
      i++;
    }
  }
  longestLine = Math.max(longestLine, bytes.length - lineStart);
  return { ascii, nul, longestLine };
}

/** Encodes a text body (already CRLF-normalised UTF-8) with the most readable encoding allowed. */
export function encodeTextBody(
  bytes: Uint8Array,
  eightBitMime: boolean,
): { encoding: TransferEncoding; body: Buffer } {
  const s = stats(bytes);
  const raw = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!s.nul && s.longestLine <= MAX_LINE_OCTETS) {
    if (s.ascii) return { encoding: '7bit', body: raw };
    if (eightBitMime) return { encoding: '8bit', body: raw };
  }
  // Quoted-printable keeps mostly-ASCII text readable; it wins unless it is over 20% larger than base64
  // (roughly: more than a fifth of the octets are non-ASCII).
  const qp = encodeQuotedPrintable(bytes);
  if (qp.length <= base64Length(bytes.length) * 1.2) return { encoding: 'quoted-printable', body: qp };
  return { encoding: 'base64', body: encodeBase64(bytes) };
}
