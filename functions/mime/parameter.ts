/**
 * MIME parameters (RFC 2045 §5.1) carrying a file name, each name written ONCE per header field:
 *
 * - `Content-Disposition: attachment; filename="plain.pdf"` for printable ASCII, otherwise the RFC 2231
 *   extended value `filename*=UTF-8''…` (split into `filename*0*=`, `filename*1*=` … continuations, each on its
 *   own line, never splitting a character's %XX sequence). No ASCII fallback beside it: a second `filename`
 *   is a duplicate parameter to Python's `email`, and ripmime/munpack would pick (or glue) the wrong one.
 * - `Content-Type: …; name="plain.pdf"`, otherwise `name="=?UTF-8?B?…?="`: RFC 2047 words inside the quoted
 *   string, which RFC 2047 §5 does not bless but Outlook and most clients read (the de facto form).
 */
import { EncodedWordSource, MAX_ENCODED_WORD } from './encoded-word.ts';

const utf8 = new TextEncoder();
const HEX = '0123456789ABCDEF';

/** RFC 2231 / RFC 5987 attr-char: the characters an extended value may carry unescaped. */
function isAttrChar(b: number): boolean {
  return (
    (b >= 0x30 && b <= 0x39) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    '!#$&+-.^_`|~'.includes(String.fromCharCode(b))
  );
}

/** Percent-encoded pieces, one per code point, so continuations can be cut between characters. */
function percentPieces(value: string): string[] {
  const pieces: string[] = [];
  for (const cp of value) {
    let piece = '';
    for (const b of utf8.encode(cp))
      piece += isAttrChar(b) ? String.fromCharCode(b) : '%' + HEX[b >> 4] + HEX[b & 15];
    pieces.push(piece);
  }
  return pieces;
}

/** RFC 2045 quoted-string for a parameter value. */
export function quoteValue(value: string): string {
  return '"' + value.replace(/[\\"]/g, '\\$&') + '"';
}

/** Longest plain quoted value (it is never folded; a header line may have 998 octets). */
const MAX_PLAIN = 900;
/** Longest `attr*=UTF-8''…` kept as a single extended parameter. */
const EXTENDED_MAX = 70;
/** RFC 5322 preferred line length. */
const LINE_MAX = 78;

/**
 * Can the value go into a plain quoted-string that every parser reads as is? Not with `"` or `\` (ripmime
 * does not unescape a quoted-pair), nor `=?` (a decoder might take it for an encoded word). The value is one
 * token, never folded inside: munpack keeps a fold's line break in the name.
 */
function isPlain(value: string): boolean {
  return /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/.test(value) && !value.includes('=?') && value.length <= MAX_PLAIN;
}

/** `filename` for Content-Disposition: one plain parameter, or the RFC 2231 extended value (continued). */
export function dispositionFileName(value: string): string[] {
  const attr = 'filename';
  if (isPlain(value)) return [`${attr}=${quoteValue(value)}`];
  const pieces = percentPieces(value);
  const whole = pieces.join('');
  if (`${attr}*=UTF-8''${whole}`.length <= EXTENDED_MAX) return [`${attr}*=UTF-8''${whole}`];
  // Each continuation goes on its own folded line: " " + prefix + section + ";" ≤ 78 characters.
  const params: string[] = [];
  let section = '';
  let index = 0;
  const prefix = (i: number): string => (i === 0 ? `${attr}*0*=UTF-8''` : `${attr}*${i}*=`);
  const flush = (): void => {
    params.push(prefix(index) + section);
    index++;
    section = '';
  };
  for (const piece of pieces) {
    if (section !== '' && section.length + piece.length > LINE_MAX - 2 - prefix(index).length) flush();
    section += piece;
  }
  flush();
  return params;
}

/**
 * `name` for Content-Type: one plain parameter, or RFC 2047 encoded words in the quoted string, returned as
 * pieces the caller may fold between (decoders drop the white space between adjacent encoded words).
 */
export function contentTypeName(value: string): string[] {
  if (isPlain(value)) return [`name=${quoteValue(value)}`];
  const source = new EncodedWordSource(value);
  const words: string[] = [];
  while (!source.done) words.push(source.next(MAX_ENCODED_WORD)!);
  words[0] = `name="${words[0]}`;
  words[words.length - 1] += '"';
  return words;
}
