/**
 * RFC 2047 encoded words (`=?UTF-8?B?…?=` / `=?UTF-8?Q?…?=`).
 *
 * - Each word is at most 75 characters and carries a whole number of characters: words are cut at
 *   grapheme-cluster boundaries where the cluster fits, otherwise at code-point boundaries — never inside
 *   a UTF-8 sequence or a surrogate pair.
 * - Q uses only the characters RFC 2047 §5(3) allows in a `phrase`, so the same words are valid in
 *   display names, Subject and other unstructured fields.
 * - B or Q is chosen by encoded size.
 */

export type WordEncoding = 'B' | 'Q';

/** RFC 2047 §2: an encoded word is at most 75 characters. */
export const MAX_ENCODED_WORD = 75;
const OVERHEAD = '=?UTF-8?B?'.length + '?='.length; // 12
const MAX_PAYLOAD = MAX_ENCODED_WORD - OVERHEAD; // 63

const utf8 = new TextEncoder();
const HEX = '0123456789ABCDEF';
/**
 * Built at first use, not at import: constructing an ICU segmenter costs ~7.5 ms of CPU (~50 ms of wall time at
 * Lambda's 256 MB CPU share), and only a header with non-ASCII text needs it.
 */
let segmenter: Intl.Segmenter | undefined;
const graphemes = () => {
  segmenter ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  return segmenter;
};

/** RFC 2047 §5(3): letters, digits, "!", "*", "+", "-", "/" may appear literally ("=", "?", "_" never). */
function isQLiteral(b: number): boolean {
  return (
    (b >= 0x30 && b <= 0x39) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    b === 0x21 ||
    b === 0x2a ||
    b === 0x2b ||
    b === 0x2d ||
    b === 0x2f
  );
}

function qLength(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) n += b === 0x20 || isQLiteral(b) ? 1 : 3;
  return n;
}

function qEncode(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) {
    if (b === 0x20) s += '_';
    else if (isQLiteral(b)) s += String.fromCharCode(b);
    else s += '=' + HEX[b >> 4] + HEX[b & 15];
  }
  return s;
}

const bLength = (n: number): number => Math.ceil(n / 3) * 4;

/** The encoding that gives the shorter result for the whole text. */
export function chooseWordEncoding(text: string): WordEncoding {
  const bytes = utf8.encode(text);
  return qLength(bytes) <= bLength(bytes.length) ? 'Q' : 'B';
}

/**
 * Produces the encoded words of a text one at a time, each sized to the room the caller has left
 * on the current line.
 */
export class EncodedWordSource {
  readonly encoding: WordEncoding;
  private readonly units: Uint8Array[] = [];
  private index = 0;

  constructor(text: string, encoding: WordEncoding = chooseWordEncoding(text)) {
    this.encoding = encoding;
    for (const { segment } of graphemes().segment(text)) {
      const bytes = utf8.encode(segment);
      if (this.cost(bytes.length, bytes) <= MAX_PAYLOAD) {
        this.units.push(bytes);
      } else {
        // A cluster too big for one word (e.g. many combining marks): cut between its code points.
        for (const cp of segment) this.units.push(utf8.encode(cp));
      }
    }
  }

  private cost(n: number, bytes: Uint8Array): number {
    return this.encoding === 'B' ? bLength(n) : qLength(bytes);
  }

  get done(): boolean {
    return this.index >= this.units.length;
  }

  /** Units left: `peek(…) === remaining` means the rest fits in one word. */
  get remaining(): number {
    return this.units.length - this.index;
  }

  /**
   * How many units the next word of at most `maxLength` characters (≤ 75) would take: as many as fit, but
   * when not all of the rest fits, the word ends after the last space that fits (a decoder that wrongly keeps
   * the break between two words then shows it at a word boundary, not inside a word). 0 when nothing fits.
   */
  peek(maxLength: number): number {
    const maxPayload = Math.min(maxLength, MAX_ENCODED_WORD) - OVERHEAD;
    let end = this.index;
    let bytes = 0;
    let qLen = 0;
    while (end < this.units.length) {
      const unit = this.units[end]!;
      const nextQ = qLen + qLength(unit);
      const size = this.encoding === 'B' ? bLength(bytes + unit.length) : nextQ;
      if (size > maxPayload) break;
      bytes += unit.length;
      qLen = nextQ;
      end++;
    }
    if (end < this.units.length) {
      for (let k = end - 1; k > this.index; k--) {
        if (isSpace(this.units[k]!)) return k + 1 - this.index;
      }
    }
    return end - this.index;
  }

  /**
   * The next word of at most `maxLength` characters (≤ 75), cut as `peek` says, or null when not even one
   * character fits (the caller then folds and asks again with more room).
   */
  next(maxLength: number): string | null {
    const count = this.peek(maxLength);
    if (count === 0) return null;
    const end = this.index + count;
    let bytes = 0;
    for (let i = this.index; i < end; i++) bytes += this.units[i]!.length;
    const chunk = new Uint8Array(bytes);
    let offset = 0;
    for (let i = this.index; i < end; i++) {
      chunk.set(this.units[i]!, offset);
      offset += this.units[i]!.length;
    }
    this.index = end;
    const payload = this.encoding === 'B' ? Buffer.from(chunk).toString('base64') : qEncode(chunk);
    return `=?UTF-8?${this.encoding}?${payload}?=`;
  }
}

function isSpace(unit: Uint8Array): boolean {
  return unit.length === 1 && (unit[0] === 0x20 || unit[0] === 0x09);
}
