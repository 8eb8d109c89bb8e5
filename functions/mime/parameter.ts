/**
 * MIME parameters (RFC 2045 §5.1) with RFC 2231 extended values for file names:
 * `filename="plain.pdf"` when the name is short printable ASCII, otherwise
 * `filename="ascii-fallback.pdf"` plus `filename*=UTF-8''…` (split into `filename*0*=`, `filename*1*=` …
 * continuations, each on its own line, never splitting a character's %XX sequence).
 */

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

/** Printable ASCII version of a file name: accents removed, anything else becomes `_`. */
export function asciiFallback(value: string, max = 60): string {
  let ascii = value
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/[^\x20-\x7e]|["\\]/gu, '_');
  if (ascii.length > max) {
    const dot = ascii.lastIndexOf('.');
    const ext = dot > 0 && ascii.length - dot <= 10 ? ascii.slice(dot) : '';
    ascii = ascii.slice(0, max - ext.length) + ext;
  }
  return ascii;
}

/** Longest `attr="value"` kept as a single plain parameter. */
const PLAIN_MAX = 70;
/** RFC 5322 preferred line length. */
const LINE_MAX = 78;

/**
 * Parameters for `attr` (`filename` or `name`) carrying `value`, each a complete `attr…=…` string;
 * the caller joins them with `;` and folds between them.
 */
export function fileNameParameters(attr: string, value: string): string[] {
  const plain = `${attr}=${quoteValue(value)}`;
  if (/^[\x20-\x7e]*$/.test(value) && !value.includes('=?') && plain.length <= PLAIN_MAX) return [plain];
  const params = [`${attr}=${quoteValue(asciiFallback(value))}`];
  const pieces = percentPieces(value);
  const whole = pieces.join('');
  if (`${attr}*=UTF-8''${whole}`.length <= PLAIN_MAX) {
    params.push(`${attr}*=UTF-8''${whole}`);
    return params;
  }
  // Each continuation goes on its own folded line: " " + prefix + section + ";" ≤ 78 characters.
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
