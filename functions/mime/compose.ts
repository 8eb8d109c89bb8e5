/**
 * Composes an RFC 5322 message with a MIME body (RFC 2045–2049): header fields in a fixed order, body
 * structure from what is given (text, html, inline images, attachments), transfer encodings per part,
 * and deterministic output for a given `random`/`now`.
 */
import { isUtf8 } from 'node:buffer';
import { type AddrSpec, parseAddrSpec, parseDomain, parseMailbox } from './address.ts';
import { assertNoLineBreak, assertWellFormed, MimeError } from './error.ts';
import {
  extraField,
  type FoldedField,
  foldField,
  type HeaderToken,
  phraseTokens,
  rawTokens,
  unstructuredTokens,
} from './header.ts';
import { asHtmlDocument, htmlToText } from './html-text.ts';
import { guessMediaType, parseMediaType } from './media-type.ts';
import { contentTypeName, dispositionFileName } from './parameter.ts';
import {
  encodeBase64,
  encodeTextBody,
  normalizeLineBreaks,
  type TransferEncoding,
} from './transfer-encoding.ts';
import type {
  AddressInput,
  AttachmentInput,
  ComposedMessage,
  ComposeOptions,
  MessageInput,
} from './types.ts';

/** `node:crypto` at first use, not at import: it stays out of a cold start's init (docs/benchmarks.md). */
const crypto = () => process.getBuiltinModule('node:crypto');

const utf8 = new TextEncoder();
const CRLF = Buffer.from('\r\n', 'latin1');
const SOFT_BREAK = Buffer.from('=\r\n', 'latin1');

interface ResolvedMailbox {
  name?: string;
  spec: AddrSpec;
}

/** A leaf part: its own header fields and its encoded body (without the final CRLF). */
interface Leaf {
  kind: 'leaf';
  fields: FoldedField[];
  body: Buffer;
  encoding: TransferEncoding;
}

interface Multipart {
  kind: 'multipart';
  subtype: 'mixed' | 'alternative' | 'related';
  /** Extra Content-Type parameters (e.g. `type="text/html"` for related, RFC 2387). */
  params: string[];
  parts: Part[];
}

type Part = Leaf | Multipart;

class Composer {
  private readonly rawUtf8: boolean;
  readonly random: (n: number) => Uint8Array;
  private readonly usedBoundaries = new Set<string>();
  smtpUtf8 = false;

  constructor(private readonly opts: ComposeOptions) {
    this.rawUtf8 = opts.smtpUtf8 === true;
    const random = opts.random ?? ((n: number) => crypto().randomBytes(n));
    this.random = (n) => {
      const bytes = random(n);
      if (!(bytes instanceof Uint8Array) || bytes.length !== n) {
        throw new MimeError('random', 'invalid_option', `random(${n}) must return ${n} bytes`);
      }
      return bytes;
    };
  }

  mailbox(input: AddressInput, field: string): ResolvedMailbox {
    let name: string | undefined;
    let spec: AddrSpec;
    if (typeof input === 'string') {
      const m = parseMailbox(input, field);
      name = m.name;
      spec = parseAddrSpec(m.address, field);
    } else if (input !== null && typeof input === 'object' && !Array.isArray(input)) {
      if (input.name !== undefined) {
        if (typeof input.name !== 'string') {
          throw new MimeError(`${field}.name`, 'invalid_header_value', 'name must be a string');
        }
        assertNoLineBreak(input.name, `${field}.name`);
        assertWellFormed(input.name, `${field}.name`);
        // White space around a phrase is not part of it (RFC 5322 CFWS): trim, as parsers do.
        name = input.name.trim() === '' ? undefined : input.name.trim();
      }
      if (typeof input.address !== 'string') {
        throw new MimeError(`${field}.address`, 'invalid_address', 'address must be a string');
      }
      spec = parseAddrSpec(input.address, `${field}.address`);
    } else {
      throw new MimeError(field, 'invalid_address', 'expected an address string or { address, name }');
    }
    if (spec.utf8) {
      if (this.opts.smtpUtf8 === false) {
        throw new MimeError(
          field,
          'smtputf8_required',
          'a non-ASCII local part needs a server with SMTPUTF8',
        );
      }
      this.smtpUtf8 = true;
    }
    return name === undefined ? { spec } : { name, spec };
  }

  mailboxes(input: AddressInput | AddressInput[] | undefined, field: string): ResolvedMailbox[] {
    if (input === undefined) return [];
    if (Array.isArray(input)) return input.map((a, i) => this.mailbox(a, `${field}[${i}]`));
    return [this.mailbox(input, field)];
  }

  mailboxTokens(list: ResolvedMailbox[]): HeaderToken[] {
    const tokens: HeaderToken[] = [];
    list.forEach((m, i) => {
      if (m.name !== undefined) tokens.push(...phraseTokens(m.name, this.rawUtf8));
      const comma = i < list.length - 1 ? ',' : '';
      // Always the angle-addr form: a bare `To: a@b` scores as spam (SpamAssassin TO_NO_BRKTS_*).
      tokens.push({ sep: ' ', text: `<${m.spec.address}>${comma}` });
    });
    return tokens;
  }

  textLeaf(text: string, subtype: 'plain' | 'html', field: string): Leaf {
    if (typeof text !== 'string') throw new MimeError(field, 'invalid_option', `${field} must be a string`);
    assertWellFormed(text, field);
    const { encoding, body } = encodeTextBody(
      utf8.encode(normalizeLineBreaks(text)),
      this.opts.eightBitMime === true,
    );
    return {
      kind: 'leaf',
      fields: [
        foldField('Content-Type', paramTokens(`text/${subtype}`, ['charset=utf-8']), field),
        foldField('Content-Transfer-Encoding', rawTokens(encoding), field),
      ],
      body,
      encoding,
    };
  }

  attachmentLeaf(a: AttachmentInput, field: string, forceInline: boolean): Leaf {
    const media = a.contentType === undefined ? { type: guessMediaType(a.filename), params: [] } : undefined;
    const type = media ?? parseMediaType(a.contentType!, `${field}.contentType`);
    const typeParams = type.params.filter(([k]) => k !== 'name').map(([k, v]) => `${k}=${v}`);
    if (type.type.startsWith('text/') && !type.params.some(([k]) => k === 'charset') && isUtf8(a.content)) {
      // A text part without a charset is US-ASCII by default (RFC 2046 §4.1.2): say what the bytes are.
      typeParams.push('charset=utf-8');
    }
    const disposition = a.disposition ?? (forceInline ? 'inline' : 'attachment');
    const fields = [
      foldField(
        'Content-Type',
        paramTokens(type.type, [...typeParams, contentTypeName(a.filename)]),
        `${field}.contentType`,
      ),
      foldField('Content-Transfer-Encoding', rawTokens('base64'), field),
      foldField(
        'Content-Disposition',
        paramTokens(disposition, dispositionFileName(a.filename)),
        `${field}.filename`,
      ),
    ];
    if (a.contentId !== undefined) {
      fields.push(
        foldField('Content-ID', rawTokens(`<${bareContentId(a.contentId)}>`), `${field}.contentId`),
      );
    }
    return { kind: 'leaf', fields, body: encodeBase64(a.content), encoding: 'base64' };
  }

  /** A boundary (RFC 2046 §5.1.1) that occurs in none of the parts it separates. */
  boundary(children: Buffer[]): string {
    for (let attempt = 0; attempt < 8; attempt++) {
      // "=_" can start no line of base64 or quoted-printable output; 7bit/8bit parts are searched.
      const b = '=_' + Buffer.from(this.random(12)).toString('hex');
      if (this.usedBoundaries.has(b)) continue;
      const delimiter = Buffer.from('--' + b, 'latin1');
      if (children.some((c) => c.includes(delimiter))) continue;
      this.usedBoundaries.add(b);
      return b;
    }
    throw new MimeError('random', 'invalid_option', 'random source keeps repeating: no usable MIME boundary');
  }

  /** Header fields and body of a part (body without the final CRLF). */
  render(part: Part, field: string): { fields: FoldedField[]; body: Buffer } {
    if (part.kind === 'leaf') return part;
    const children = part.parts.map((p) => {
      const r = this.render(p, field);
      return Buffer.concat([Buffer.from(r.fields.map((f) => f.text).join('') + '\r\n', 'utf8'), r.body]);
    });
    const boundary = this.boundary(children);
    const chunks: Buffer[] = [];
    for (const child of children) chunks.push(Buffer.from(`--${boundary}\r\n`, 'latin1'), child, CRLF);
    chunks.push(Buffer.from(`--${boundary}--`, 'latin1'));
    return {
      fields: [
        foldField(
          'Content-Type',
          paramTokens(`multipart/${part.subtype}`, [`boundary="${boundary}"`, ...part.params]),
          field,
        ),
      ],
      body: Buffer.concat(chunks),
    };
  }
}

/**
 * `value; a=b; c=d` as tokens that fold after each `;`. A parameter given as pieces may also fold between them
 * (never inside a quoted value otherwise: munpack keeps the fold in a file name).
 */
function paramTokens(value: string, params: Array<string | string[]>): HeaderToken[] {
  const tokens: HeaderToken[] = [{ sep: ' ', text: params.length > 0 ? `${value};` : value }];
  params.forEach((param, i) => {
    const pieces = (typeof param === 'string' ? [param] : param).map((text) => ({ sep: ' ', text }));
    if (i < params.length - 1) pieces[pieces.length - 1]!.text += ';';
    tokens.push(...pieces);
  });
  return tokens;
}

function htmlDocument(html: string): string {
  return typeof html === 'string' ? asHtmlDocument(html) : html;
}

function hasHighOctet(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! > 0x7f) return true;
  return false;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 §3.3 date-time, in UTC: `Thu, 26 Nov 2026 03:56:02 +0000`. */
export function formatDate(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return (
    `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
  );
}

/** `logo@x` from `logo@x` or `<logo@x>` (the `cid:` URL form has no brackets, RFC 2392). */
function bareContentId(id: string): string {
  return id.startsWith('<') && id.endsWith('>') ? id.slice(1, -1) : id;
}

function validateAttachment(a: AttachmentInput, field: string): void {
  if (a === null || typeof a !== 'object')
    throw new MimeError(field, 'invalid_attachment', 'expected an object');
  if (typeof a.filename !== 'string') {
    throw new MimeError(`${field}.filename`, 'invalid_filename', 'filename must be a string');
  }
  assertNoLineBreak(a.filename, `${field}.filename`);
  assertWellFormed(a.filename, `${field}.filename`);
  if (a.filename.trim() === '')
    throw new MimeError(`${field}.filename`, 'invalid_filename', 'filename is empty');
  if (!(a.content instanceof Uint8Array)) {
    throw new MimeError(`${field}.content`, 'invalid_attachment', 'content must be a Uint8Array');
  }
  if (a.contentType !== undefined) {
    if (typeof a.contentType !== 'string') {
      throw new MimeError(`${field}.contentType`, 'invalid_content_type', 'contentType must be a string');
    }
    assertNoLineBreak(a.contentType, `${field}.contentType`);
  }
  if (a.contentId !== undefined) {
    if (typeof a.contentId !== 'string') {
      throw new MimeError(`${field}.contentId`, 'invalid_content_id', 'contentId must be a string');
    }
    assertNoLineBreak(a.contentId, `${field}.contentId`);
    // msg-id without the angle brackets (RFC 2392 cid: URLs refer to it).
    if (!/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@]+$/.test(bareContentId(a.contentId))) {
      throw new MimeError(
        `${field}.contentId`,
        'invalid_content_id',
        'contentId must be like "logo@example.com"',
      );
    }
  }
  if (a.disposition !== undefined && a.disposition !== 'attachment' && a.disposition !== 'inline') {
    throw new MimeError(
      `${field}.disposition`,
      'invalid_attachment',
      'disposition must be attachment or inline',
    );
  }
}

export function compose(input: MessageInput, opts: ComposeOptions = {}): ComposedMessage {
  if (input === null || typeof input !== 'object')
    throw new MimeError('message', 'invalid_option', 'expected an object');
  const c = new Composer(opts);
  const rawUtf8 = opts.smtpUtf8 === true;
  // 1. Validate every header-bound input before composing anything.
  const v = validateInput(c, input, opts, rawUtf8);
  // 2. Envelope: to + cc + bcc, deduplicated (domains are already lower-case A-labels).
  const rcpts = envelopeRecipients([...v.to, ...v.cc, ...v.bcc]);
  // 3. Body structure.
  const root = bodyStructure(c, input, v.attachments);
  // 4. Header fields, fixed order.
  const messageId = `<${Buffer.from(c.random(16)).toString('hex')}@${v.idDomain}>`;
  const rendered = c.render(root, 'body');
  const fields: FoldedField[] = [
    foldField('Date', rawTokens(formatDate(v.date)), 'date'),
    foldField('Message-ID', rawTokens(messageId), 'messageIdDomain'),
    foldField('MIME-Version', rawTokens('1.0'), 'MIME-Version'),
    foldField('From', c.mailboxTokens([v.from]), 'from'),
  ];
  if (v.replyTo.length > 0) fields.push(foldField('Reply-To', c.mailboxTokens(v.replyTo), 'replyTo'));
  if (v.to.length > 0) fields.push(foldField('To', c.mailboxTokens(v.to), 'to'));
  if (v.cc.length > 0) fields.push(foldField('Cc', c.mailboxTokens(v.cc), 'cc'));
  fields.push(foldField('Subject', unstructuredTokens(input.subject, rawUtf8), 'subject'));
  for (const x of v.extras) fields.push(foldField(x.name, x.tokens, x.field));
  fields.push(...rendered.fields);

  const head = fields.map((f) => f.text).join('');
  if (/[^\x00-\x7f]/.test(head)) c.smtpUtf8 = true;
  const body = rendered.body;
  const endsWithCRLF = body.length >= 2 && body[body.length - 2] === 0x0d && body[body.length - 1] === 0x0a;
  // The message ends in CRLF. A quoted-printable body gets a soft line break (its text is unchanged);
  // a 7bit/8bit text without a final line break gains one.
  const qp = root.kind === 'leaf' && root.encoding === 'quoted-printable';
  const tail = endsWithCRLF ? Buffer.alloc(0) : qp ? SOFT_BREAK : CRLF;
  const buf = Buffer.concat([Buffer.from(head + '\r\n', 'utf8'), body, tail]);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  return {
    bytes,
    messageId,
    envelope: { from: v.from.spec.address, to: rcpts },
    eightBit: hasHighOctet(buf),
    smtpUtf8: c.smtpUtf8,
    size: bytes.length,
    headers: fields.map((f) => [f.name, f.value]),
  };
}

/** Every header-bound input, validated (and resolved) before anything is composed. Throws `MimeError`. */
function validateInput(c: Composer, input: MessageInput, opts: ComposeOptions, rawUtf8: boolean) {
  if (Array.isArray(input.from))
    throw new MimeError('from', 'invalid_address', 'from must be a single mailbox');
  const from = c.mailbox(input.from, 'from');
  const replyTo = c.mailboxes(input.replyTo, 'replyTo');
  const to = c.mailboxes(input.to, 'to');
  const cc = c.mailboxes(input.cc, 'cc');
  const bcc = c.mailboxes(input.bcc, 'bcc');
  if (typeof input.subject !== 'string') {
    throw new MimeError('subject', 'invalid_header_value', 'subject must be a string');
  }
  assertNoLineBreak(input.subject, 'subject');
  assertWellFormed(input.subject, 'subject');
  let idDomain = from.spec.domain;
  if (input.messageIdDomain !== undefined) {
    assertNoLineBreak(String(input.messageIdDomain), 'messageIdDomain');
    idDomain = parseDomain(String(input.messageIdDomain), 'messageIdDomain');
  }
  const extras = Object.entries(input.headers ?? {}).map(([name, value]) => extraField(name, value, rawUtf8));
  const seenExtra = new Set<string>();
  for (const x of extras) {
    // Object keys are unique, but not case-insensitively: `List-Id` and `list-id` would be two fields.
    const key = x.name.toLowerCase();
    if (seenExtra.has(key)) throw new MimeError(x.field, 'duplicate_header', `${x.name} is given twice`);
    seenExtra.add(key);
  }
  const attachments = input.attachments ?? [];
  if (!Array.isArray(attachments)) {
    throw new MimeError('attachments', 'invalid_attachment', 'attachments must be an array');
  }
  for (const [i, a] of attachments.entries()) validateAttachment(a, `attachments[${i}]`);
  const date = input.date ?? (opts.now ?? (() => new Date()))();
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new MimeError(input.date ? 'date' : 'now', 'invalid_date', 'not a valid Date');
  }
  return { from, replyTo, to, cc, bcc, idDomain, extras, attachments, date };
}

/** The envelope's recipients: each address once, in order. Throws when there is none. */
function envelopeRecipients(mailboxes: ResolvedMailbox[]): string[] {
  const seen = new Set<string>();
  const rcpts: string[] = [];
  for (const m of mailboxes) {
    if (!seen.has(m.spec.address)) {
      seen.add(m.spec.address);
      rcpts.push(m.spec.address);
    }
  }
  if (rcpts.length === 0)
    throw new MimeError('to', 'missing_recipient', 'at least one of to, cc or bcc is needed');
  return rcpts;
}

/**
 * The MIME tree: text and HTML as alternatives (an HTML body always has a text alternative, generated when not
 * given, and is a whole document), inline attachments related to the HTML, the others mixed.
 */
function bodyStructure(c: Composer, input: MessageInput, attachments: AttachmentInput[]): Part {
  const html = input.html !== undefined ? c.textLeaf(htmlDocument(input.html), 'html', 'html') : undefined;
  const textInput = input.text ?? (typeof input.html === 'string' ? htmlToText(input.html) : undefined);
  const text = textInput !== undefined ? c.textLeaf(textInput, 'plain', 'text') : undefined;
  const related: Leaf[] = [];
  const mixed: Leaf[] = [];
  attachments.forEach((a, i) => {
    const inRelated = html !== undefined && a.contentId !== undefined;
    const leaf = c.attachmentLeaf(a, `attachments[${i}]`, a.contentId !== undefined);
    (inRelated ? related : mixed).push(leaf);
  });
  const htmlPart: Part | undefined =
    html && related.length > 0
      ? { kind: 'multipart', subtype: 'related', params: ['type="text/html"'], parts: [html, ...related] }
      : html;
  let main: Part | undefined =
    text && htmlPart
      ? { kind: 'multipart', subtype: 'alternative', params: [], parts: [text, htmlPart] }
      : (text ?? htmlPart);
  if (!main && mixed.length === 0) main = c.textLeaf('', 'plain', 'text');
  return mixed.length > 0
    ? { kind: 'multipart', subtype: 'mixed', params: [], parts: main ? [main, ...mixed] : mixed }
    : main!;
}
