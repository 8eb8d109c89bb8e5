/**
 * RFC 5322 header fields: folding (§2.2.3), unstructured values (§3.2.5) with RFC 2047 encoded words,
 * and the policy for caller-supplied extra fields.
 */
import { EncodedWordSource } from './encoded-word.ts';
import { assertNoLineBreak, assertWellFormed, MimeError } from './error.ts';

/** RFC 5322 §2.1.1: lines SHOULD be at most 78 characters, MUST be at most 998 (both without CRLF). */
export const FOLD_AT = 78;
export const MAX_LINE = 998;

/**
 * One unit of a header value. `sep` is the white space before it: folding inserts CRLF in front of
 * `sep`, so `sep` must start with SP or HTAB; an empty `sep` glues the token to the previous one.
 */
export type HeaderToken =
  | { sep: string; text: string }
  /** `phrase`: a display name, moved whole to the next line rather than split when it fits one word. */
  | { sep: string; words: EncodedWordSource; phrase?: boolean };

export interface FoldedField {
  name: string;
  /** The value as written, unfolded (CRLF removed). */
  value: string;
  /** The whole field, folded, ending in CRLF. */
  text: string;
}

const octets = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * Folds a field at white space so lines stay within 78 characters where the tokens allow, and
 * refuses (naming `field`) any line that would pass 998 octets.
 */
export function foldField(name: string, tokens: HeaderToken[], field: string): FoldedField {
  const lines: string[] = [];
  let line = `${name}:`;
  let lineLen = octets(line);
  let value = '';
  let first = true;
  const put = (sep: string, text: string, allowFold: boolean): void => {
    const add = octets(sep) + octets(text);
    if (allowFold && sep !== '' && !first && lineLen + add > FOLD_AT) {
      lines.push(line);
      line = sep + text;
      lineLen = add;
    } else {
      line += sep + text;
      lineLen += add;
    }
    value += sep + text;
    first = false;
  };
  for (const token of tokens) {
    const sep = first && token.sep === '' ? ' ' : token.sep;
    if ('text' in token) {
      if (token.text === '' && sep.trim() === '') continue;
      put(sep, token.text, true);
      continue;
    }
    let s = sep;
    const atStart = octets(name) + 1;
    while (!token.words.done) {
      const room = FOLD_AT - lineLen - octets(s);
      const onFreshLine = token.words.peek(FOLD_AT - octets(s));
      const here = token.words.peek(room);
      // Fold BEFORE an encoded word rather than cut it short: when a fresh line holds more of the text (or
      // all of a short one, which is then never split: Python's parser shows a space between two words of a
      // display name). Right after "Name:" only a short display name moves to the next line.
      const whole = token.phrase === true && onFreshLine === token.words.remaining;
      const fold = here === 0 || (here < onFreshLine && (lineLen > atStart || whole));
      if (fold && lineLen > 0) {
        lines.push(line);
        line = '';
        lineLen = 0;
      }
      const word = token.words.next(FOLD_AT - lineLen - octets(s));
      if (word === null) throw new MimeError(field, 'line_too_long', 'cannot encode value');
      line += s + word;
      lineLen += octets(s) + octets(word);
      value += s + word;
      s = ' ';
      first = false;
    }
  }
  lines.push(line);
  for (const l of lines) {
    if (octets(l) > MAX_LINE) {
      throw new MimeError(field, 'line_too_long', `a header line would exceed ${MAX_LINE} octets`);
    }
  }
  return { name, value: value.replace(/^ /, ''), text: lines.join('\r\n') + '\r\n' };
}

/** A "word" longer than this is written as encoded words so it can be split across lines. */
const LONG_WORD = 900;

/**
 * Characters that can go into a header raw. Printable ASCII and HTAB always; UTF-8 only when
 * `rawUtf8` (RFC 6532). Other controls always go through encoded words.
 */
function isRawSafe(word: string, rawUtf8: boolean): boolean {
  return rawUtf8 ? !/[\0-\x08\x0a-\x1f\x7f-\x9f]/.test(word) : /^[\t\x20-\x7e]*$/.test(word);
}

/** Does this word need an encoded word: unsafe characters, something a decoder would decode, or too long. */
function needsEncoding(word: string, rawUtf8: boolean): boolean {
  return !isRawSafe(word, rawUtf8) || word.includes('=?') || octets(word) > LONG_WORD;
}

/** Words with the white space before each; trailing white space stays on the last word. */
function splitWords(value: string): Array<{ sep: string; word: string }> {
  const segments: Array<{ sep: string; word: string }> = [];
  for (const m of value.matchAll(/([\t ]*)([^\t ]+)/g)) segments.push({ sep: m[1]!, word: m[2]! });
  if (segments.length > 0) segments[segments.length - 1]!.word += /[\t ]*$/.exec(value)![0];
  return segments;
}

/** A value written as is, foldable only at its own white space. */
export function rawTokens(value: string): Array<{ sep: string; text: string }> {
  const segments = splitWords(value);
  if (segments.length === 0) return [{ sep: ' ', text: value }];
  return segments.map((s, i) => ({ sep: i === 0 ? ' ' + s.sep : s.sep, text: s.word }));
}

/**
 * RFC 5322 `unstructured` (Subject, Comments, X-*): raw words stay raw; the smallest run of words that
 * needs it (from the first such word to the last) becomes encoded words. White space around the run and
 * inside raw text is kept exactly.
 */
export function unstructuredTokens(value: string, rawUtf8: boolean): HeaderToken[] {
  const segments = splitWords(value);
  if (segments.length === 0) return [{ sep: ' ', text: value }];
  let firstEnc = -1;
  let lastEnc = -1;
  segments.forEach((s, i) => {
    if (needsEncoding(s.word.trimEnd(), rawUtf8)) {
      if (firstEnc < 0) firstEnc = i;
      lastEnc = i;
    }
  });
  const tokens: HeaderToken[] = [];
  const sepOf = (i: number): string => (i === 0 ? ' ' + segments[0]!.sep : segments[i]!.sep);
  for (let i = 0; i < segments.length; i++) {
    if (i === firstEnc) {
      let run = segments[i]!.word;
      for (let j = i + 1; j <= lastEnc; j++) run += segments[j]!.sep + segments[j]!.word;
      tokens.push({ sep: sepOf(i), words: new EncodedWordSource(run) });
      i = lastEnc;
      continue;
    }
    tokens.push({ sep: sepOf(i), text: segments[i]!.word });
  }
  return tokens;
}

/** RFC 5322 `atext` (with UTF-8 when raw UTF-8 headers are allowed, RFC 6532). */
const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$/;
const ATOM_UTF8 = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a0-\u{10ffff}]+$/u;

/**
 * A display name as an RFC 5322 `phrase`: atoms when possible, else a quoted-string (with `"` and `\`
 * escaped), else RFC 2047 encoded words for non-ASCII or control characters.
 */
export function phraseTokens(name: string, rawUtf8: boolean): HeaderToken[] {
  if (name.includes('\t') || !isRawSafe(name, rawUtf8) || name.includes('=?')) {
    return [{ sep: ' ', words: new EncodedWordSource(name), phrase: true }];
  }
  const words = name.split(' ');
  const atom = rawUtf8 ? ATOM_UTF8 : ATOM;
  if (words.every((w) => atom.test(w))) return words.map((w) => ({ sep: ' ', text: w }));
  const tokens = rawTokens('"' + name.replace(/[\\"]/g, '\\$&') + '"');
  if (tokens.some((t) => octets(t.text) > LONG_WORD))
    return [{ sep: ' ', words: new EncodedWordSource(name), phrase: true }];
  return tokens;
}

/** RFC 5322 §3.6.8 field name: printable US-ASCII except ":". */
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/** Extra fields the caller may set, with their canonical spelling and value kind. */
const ALLOWED: Record<string, { name: string; kind: 'unstructured' | 'structured' | 'msg-id' }> = {};
for (const [name, kind] of [
  ['List-Unsubscribe', 'structured'],
  ['List-Unsubscribe-Post', 'structured'],
  ['List-Id', 'structured'],
  ['List-Help', 'structured'],
  ['List-Subscribe', 'structured'],
  ['List-Post', 'structured'],
  ['List-Owner', 'structured'],
  ['List-Archive', 'structured'],
  ['In-Reply-To', 'msg-id'],
  ['References', 'msg-id'],
  ['Keywords', 'unstructured'],
  ['Comments', 'unstructured'],
  ['Auto-Submitted', 'structured'],
  ['Precedence', 'structured'],
  ['Organization', 'unstructured'],
  ['Importance', 'structured'],
  ['Priority', 'structured'],
  ['Sensitivity', 'structured'],
  ['Feedback-ID', 'structured'],
] as const) {
  ALLOWED[name.toLowerCase()] = { name, kind };
}

/** Fields that define the message, its MIME structure or its trace: set only by the composer or MTAs. */
const STRUCTURAL = new Set([
  'from',
  'sender',
  'reply-to',
  'to',
  'cc',
  'bcc',
  'subject',
  'date',
  'message-id',
  'mime-version',
  'received',
  'return-path',
  'dkim-signature',
  'domainkey-signature',
  'arc-seal',
  'arc-message-signature',
  'arc-authentication-results',
  'authentication-results',
  'received-spf',
  'delivered-to',
  'resent-from',
  'resent-sender',
  'resent-to',
  'resent-cc',
  'resent-bcc',
  'resent-date',
  'resent-message-id',
]);

/** `<id-left@id-right>`, RFC 5322 §3.6.4 (no-fold-literal right side allowed). */
const MSG_ID =
  /^<[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+@(?:[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+|\[[\x21-\x5a\x5e-\x7e]*\])>$/;

/**
 * Validates one caller-supplied field and returns its tokens. Throws MimeError with field `headers.<Name>`.
 */
export function extraField(
  rawName: string,
  value: string,
  rawUtf8: boolean,
): { name: string; tokens: HeaderToken[]; field: string; utf8: boolean } {
  // `headers.X-Foo`, or `headers["bad\r\nname"]` (escaped: an error message never carries a line break).
  const field = FIELD_NAME.test(rawName) ? `headers.${rawName}` : `headers[${JSON.stringify(rawName)}]`;
  assertNoLineBreak(rawName, field);
  if (!FIELD_NAME.test(rawName)) {
    throw new MimeError(field, 'invalid_header_name', 'not a valid header field name (RFC 5322 ftext)');
  }
  if (typeof value !== 'string') throw new MimeError(field, 'invalid_header_value', 'value must be a string');
  assertNoLineBreak(value, field);
  assertWellFormed(value, field);
  const lower = rawName.toLowerCase();
  if (STRUCTURAL.has(lower) || lower.startsWith('content-')) {
    throw new MimeError(
      field,
      'structural_header',
      `${rawName} is set by the composer from the message fields and cannot be given as an extra header`,
    );
  }
  const spec =
    ALLOWED[lower] ?? (lower.startsWith('x-') ? { name: rawName, kind: 'unstructured' as const } : undefined);
  if (!spec) {
    const allowed = Object.values(ALLOWED).map((a) => a.name);
    throw new MimeError(
      field,
      'header_not_allowed',
      `${rawName} is not an allowed extra header (allowed: ${allowed.join(', ')}, X-*)`,
    );
  }
  const nonAscii = /[^\x00-\x7f]/.test(value);
  if (spec.kind === 'unstructured') {
    return { name: spec.name, tokens: unstructuredTokens(value, rawUtf8), field, utf8: rawUtf8 && nonAscii };
  }
  if (/[\0-\x08\x0a-\x1f\x7f]/.test(value)) {
    throw new MimeError(field, 'invalid_header_value', 'control characters are not allowed');
  }
  if (nonAscii && !rawUtf8) {
    throw new MimeError(
      field,
      'non_ascii_structured',
      `${spec.name} is a structured field: non-ASCII is allowed only with SMTPUTF8 (encode URLs/ids first)`,
    );
  }
  if (spec.kind === 'msg-id') {
    const ids = value
      .trim()
      .split(/[\t ]+/)
      .filter(Boolean);
    if (ids.length === 0)
      throw new MimeError(field, 'invalid_header_value', 'expected one or more <id@domain>');
    const out = ids.map((id) => (id.startsWith('<') ? id : `<${id}>`));
    for (const id of out) {
      if (!MSG_ID.test(id)) throw new MimeError(field, 'invalid_header_value', `not a message id: ${id}`);
    }
    return { name: spec.name, tokens: out.map((text) => ({ sep: ' ', text })), field, utf8: false };
  }
  // Structured: fold only at existing white space (after commas in URL lists).
  return { name: spec.name, tokens: rawTokens(value), field, utf8: nonAscii };
}
