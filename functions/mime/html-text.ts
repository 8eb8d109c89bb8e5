/**
 * The text alternative of an HTML body (RFC 2046 §5.1.4 multipart/alternative): a message with an HTML part
 * only scores as spam (SpamAssassin MIME_HTML_ONLY) and is unreadable in text-only clients. One linear scan,
 * no regular expression that can backtrack over the input: block elements become line breaks, list items
 * "- ", links "label <url>", images their alt text; script, style, head and comments are dropped; character
 * references are decoded; white space collapses as a browser would (except in <pre>).
 */

/** Elements that start and end a line of text. */
const BLOCK = new Set([
  'address',
  'article',
  'aside',
  'blockquote',
  'dd',
  'div',
  'dl',
  'dt',
  'fieldset',
  'figcaption',
  'figure',
  'footer',
  'form',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'header',
  'hr',
  'li',
  'main',
  'nav',
  'ol',
  'p',
  'pre',
  'section',
  'table',
  'tbody',
  'tfoot',
  'thead',
  'tr',
  'ul',
]);
/** Elements whose content is not text. */
const SKIP = new Set(['script', 'style', 'head', 'title', 'template', 'noscript', 'svg', 'object']);

const NAMED: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
  copy: '©',
  reg: '®',
  trade: '™',
  hellip: '…',
  mdash: '—',
  ndash: '–',
  lsquo: '‘',
  rsquo: '’',
  ldquo: '“',
  rdquo: '”',
  laquo: '«',
  raquo: '»',
  euro: '€',
  pound: '£',
  shy: '',
  bull: '•',
  middot: '·',
};

/** Decodes character references (`&amp;`, `&#233;`, `&#xE9;`); unknown ones stay as written. */
export function decodeEntities(s: string): string {
  return s.replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});/g, (whole, ref: string) => {
    if (ref[0] !== '#') return NAMED[ref] ?? whole;
    const cp = ref[1] === 'x' || ref[1] === 'X' ? Number.parseInt(ref.slice(2), 16) : Number(ref.slice(1));
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\ufffd';
    return String.fromCodePoint(cp);
  });
}

function attribute(attrs: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|\\s)${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s"'>]+))`, 'i').exec(attrs);
  return m ? decodeEntities(m[1] ?? m[2] ?? m[3] ?? '') : undefined;
}

const isSpace = (c: string | undefined): boolean =>
  c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f';

/**
 * Builds the text: collapses white space outside <pre>, never more than one blank line. Pieces go into an
 * array and the end of the text is tracked on the side (inspecting a growing string would flatten it each time).
 */
class TextOut {
  private readonly parts: string[] = [];
  private last = ''; // last character written
  private newlines = 0; // how many "\n" the text ends with
  private pendingSpace = false;
  pre = 0;

  private push(s: string): void {
    this.parts.push(s);
    let n = 0;
    while (n < s.length && s[s.length - 1 - n] === '\n') n++;
    this.newlines = n === s.length ? this.newlines + n : n;
    this.last = s[s.length - 1]!;
  }

  text(s: string): void {
    if (s === '') return;
    if (this.pre > 0) {
      this.push(s);
      this.pendingSpace = false;
      return;
    }
    for (const piece of s.split(/[ \t\r\n\f]+/)) {
      if (piece === '') continue;
      if ((this.pendingSpace || isSpace(s[0])) && this.last !== '' && this.last !== '\n') this.push(' ');
      this.pendingSpace = true;
      this.push(piece);
    }
    this.pendingSpace = isSpace(s[s.length - 1]);
  }

  /** A line break; `blank` asks for an empty line (paragraphs). */
  lineBreak(blank = false): void {
    this.pendingSpace = false;
    while (this.last === ' ' || this.last === '\t') {
      const trimmed = this.parts.pop()!.replace(/[ \t]+$/, '');
      this.last = '';
      this.newlines = 0;
      if (trimmed !== '') this.push(trimmed);
      else if (this.parts.length > 0) {
        const prev = this.parts.pop()!;
        this.push(prev);
      }
    }
    if (this.last === '') return;
    if (this.newlines === 0) this.push('\n');
    if (blank && this.newlines === 1) this.push('\n');
  }

  toString(): string {
    const lines: string[] = [];
    for (const line of this.parts.join('').split('\n')) {
      const trimmed = line.trimEnd();
      if (trimmed === '' && (lines.length === 0 || lines[lines.length - 1] === '')) continue;
      lines.push(trimmed);
    }
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines.join('\n') + '\n';
  }
}

/** One tag: what it does to the text. */
function onTag(out: TextOut, name: string, closing: boolean, attrs: string, links: string[]): void {
  if (name === 'br') {
    out.lineBreak();
    return;
  }
  if (name === 'pre') out.pre = Math.max(0, out.pre + (closing ? -1 : 1));
  if (name === 'img' && !closing) {
    const alt = attribute(attrs, 'alt');
    if (alt) out.text(`[${alt}]`);
    return;
  }
  if (name === 'a') {
    if (!closing) links.push(attribute(attrs, 'href') ?? '');
    else {
      const href = links.pop() ?? '';
      if (/^(https?:|mailto:)/i.test(href)) out.text(` <${href.replace(/^mailto:/i, '')}>`);
    }
    return;
  }
  if (name === 'td' || name === 'th') {
    if (closing) out.text(' ');
    return;
  }
  if (!BLOCK.has(name)) return;
  out.lineBreak(name === 'p' || /^h[1-6]$/.test(name) || name === 'table' || name === 'blockquote');
  if (name === 'li' && !closing) out.text('- ');
}

/** Plain text for an HTML document or fragment. Linear in the input. */
export function htmlToText(html: string): string {
  const out = new TextOut();
  const lower = html.toLowerCase();
  const links: string[] = [];
  let i = 0;
  let gt = -1; // the first ">" at or after the current "<" (each ">" is searched for once)
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    const textEnd = lt < 0 ? html.length : lt;
    if (textEnd > i) out.text(decodeEntities(html.slice(i, textEnd)));
    if (lt < 0) break;
    if (lower.startsWith('<!--', lt)) {
      const end = lower.indexOf('-->', lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    if (gt < lt) gt = lower.indexOf('>', lt);
    if (gt < 0) {
      out.text(decodeEntities(html.slice(lt))); // no tag can close: the rest is text
      break;
    }
    const next = lower.indexOf('<', lt + 1);
    const m =
      next >= 0 && next < gt ? null : /^<(\/?)([a-z][a-z0-9-]*)([^>]*)>$/.exec(lower.slice(lt, gt + 1));
    if (!m) {
      // `<!doctype …>` or `<?…>` is skipped; any other "<" is text.
      const decl = lower[lt + 1] === '!' || lower[lt + 1] === '?';
      if (!decl) out.text('<');
      i = decl && (next < 0 || next > gt) ? gt + 1 : lt + 1;
      continue;
    }
    const [, slash, name] = m as unknown as [string, string, string];
    const attrs = html.slice(lt + 1 + slash.length + name.length, gt);
    i = gt + 1;
    if (SKIP.has(name) && !slash) {
      const close = lower.indexOf(`</${name}`, i);
      const end = close < 0 ? -1 : lower.indexOf('>', close);
      i = end < 0 ? html.length : end + 1;
      continue;
    }
    onTag(out, name, slash === '/', attrs, links);
  }
  return out.toString();
}

/** An HTML fragment (no `<html>` element) as a document: `<html><body>…</body></html>`. */
export function asHtmlDocument(html: string): string {
  return /<html[\s>]/i.test(html) ? html : `<html><body>${html}</body></html>`;
}

/** Text safe inside HTML text and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/gu, (c) => `&#${c.charCodeAt(0)};`);
}

/** UTF-8 bytes of `escapeHtml(s)`, without building it (each of `& < > " '` becomes five bytes). */
export function escapedHtmlBytes(s: string): number {
  let specials = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x26 || c === 0x3c || c === 0x3e || c === 0x22 || c === 0x27) specials++;
  }
  return Buffer.byteLength(s, 'utf8') + 4 * specials;
}
