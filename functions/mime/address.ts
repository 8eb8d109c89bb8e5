/**
 * Mailboxes and addresses: RFC 5322 §3.4 (name-addr / addr-spec) for parsing what callers give,
 * RFC 5321 §4.1.2 / §4.5.3.1 (Mailbox syntax and lengths) for what goes on the wire, RFC 6531 for
 * UTF-8 local parts, IDNA (via `node:url` domainToASCII) for international domains.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import { assertNoLineBreak, assertWellFormed, MimeError } from './error.ts';
import type { Mailbox } from './types.ts';

/** An RFC 5321 mailbox in wire form. */
export interface AddrSpec {
  /** Local part as written (dot-atom, or quoted-string when needed). */
  local: string;
  /** A-label domain (lower case) or address literal `[…]`. */
  domain: string;
  /** `local@domain`. */
  address: string;
  /** The local part has non-ASCII characters: needs SMTPUTF8 (RFC 6531). */
  utf8: boolean;
}

const MAX_LOCAL = 64;
const MAX_ADDRESS = 254;
const MAX_DOMAIN = 253;

/** RFC 5321 Dot-string, with RFC 6531 UTF-8 atext. */
const DOT_STRING =
  /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10ffff}]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10ffff}]+)*$/u;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/**
 * Characters no local part may have, even where RFC 6531 UTF-8 would let them in: controls (C0, C1), format
 * characters (bidi overrides and isolates, zero-width), separators (NBSP, U+3000, U+2028/2029), surrogates,
 * private-use and unassigned code points. They make an address that looks like another, or breaks a log line.
 */
const INVISIBLE = /[\p{C}\p{Z}]/u;

const octets = (s: string): number => Buffer.byteLength(s, 'utf8');

function invalid(field: string, message: string): MimeError {
  return new MimeError(field, 'invalid_address', message);
}

function invisibleInLocalPart(field: string): MimeError {
  return invalid(field, 'the local part has a control, invisible, separator or direction character');
}

/** RFC 5321 Domain (A-labels after IDNA) or address-literal. */
export function parseDomain(input: string, field: string): string {
  if (input.startsWith('[')) {
    const inner = input.endsWith(']') ? input.slice(1, -1) : '';
    if (isIPv4(inner)) return `[${inner}]`;
    if (/^IPv6:/i.test(inner) && isIPv6(inner.slice(5))) return `[IPv6:${inner.slice(5).toLowerCase()}]`;
    throw new MimeError(field, 'invalid_domain', 'address literal must be [IPv4] or [IPv6:…]');
  }
  if (input === '') throw new MimeError(field, 'invalid_domain', 'domain is empty');
  const ascii =
    /^[\x21-\x7e]+$/.test(input) && !/xn--/i.test(input) ? input.toLowerCase() : domainToASCII(input);
  if (ascii === '')
    throw new MimeError(field, 'invalid_domain', 'domain is not a valid (international) domain name');
  if (octets(ascii) > MAX_DOMAIN)
    throw new MimeError(field, 'invalid_domain', 'domain is longer than 253 octets');
  const labels = ascii.split('.');
  if (!labels.every((l) => LDH_LABEL.test(l))) {
    throw new MimeError(
      field,
      'invalid_domain',
      'domain must be letters, digits and hyphens in dot-separated labels',
    );
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) {
    throw new MimeError(field, 'invalid_domain', 'numeric domain: write an IP address as [192.0.2.1]');
  }
  return ascii;
}

/** Reads a quoted-string starting at `start` (a `"`); returns its unescaped content and the index after it. */
function readQuoted(s: string, start: number, field: string): { content: string; end: number } {
  let content = '';
  for (let i = start + 1; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      if (i + 1 >= s.length) break;
      content += s[++i];
    } else if (c === '"') {
      return { content, end: i + 1 };
    } else {
      content += c;
    }
  }
  throw invalid(field, 'unterminated quoted string');
}

/** Parses and validates `local@domain` (optionally in angle brackets). */
export function parseAddrSpec(input: string, field: string): AddrSpec {
  assertNoLineBreak(input, field);
  assertWellFormed(input, field);
  let s = input.trim();
  if (s.startsWith('<') && s.endsWith('>')) s = s.slice(1, -1).trim();
  if (s === '') throw invalid(field, 'address is empty');
  let localContent: string;
  let rest: string;
  if (s.startsWith('"')) {
    const q = readQuoted(s, 0, field);
    localContent = q.content;
    rest = s.slice(q.end);
    if (!rest.startsWith('@')) throw invalid(field, 'expected @ after the quoted local part');
    // RFC 5321 qtextSMTP / quoted-pairSMTP: printable (and, RFC 6531, UTF-8) characters only.
    if (/[\0-\x1f\x7f]/.test(localContent)) throw invalid(field, 'control character in the local part');
    if (INVISIBLE.test(localContent.replaceAll(' ', ''))) throw invisibleInLocalPart(field);
  } else {
    const at = s.lastIndexOf('@');
    if (at < 0) throw invalid(field, `not an email address (missing @)`);
    localContent = s.slice(0, at);
    rest = s.slice(at);
    if (INVISIBLE.test(localContent)) throw invisibleInLocalPart(field);
    if (!DOT_STRING.test(localContent)) {
      throw invalid(field, 'local part must be a dot-atom or a quoted string');
    }
  }
  if (localContent === '') throw invalid(field, 'local part is empty');
  const local = DOT_STRING.test(localContent) ? localContent : `"${localContent.replace(/[\\"]/g, '\\$&')}"`;
  const domain = parseDomain(rest.slice(1), field);
  if (octets(local) > MAX_LOCAL) {
    throw new MimeError(field, 'address_too_long', `local part is longer than ${MAX_LOCAL} octets`);
  }
  const address = `${local}@${domain}`;
  if (octets(address) > MAX_ADDRESS) {
    throw new MimeError(field, 'address_too_long', `address is longer than ${MAX_ADDRESS} octets`);
  }
  return { local, domain, address, utf8: /[^\x00-\x7f]/.test(local) };
}

/** Index of the `<` that opens the angle-addr, ignoring quoted strings and comments. */
function angleStart(s: string): number {
  let inQuote = false;
  let depth = 0;
  let last = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && (inQuote || depth > 0)) i++;
    else if (inQuote) inQuote = c !== '"';
    else if (c === '"') inQuote = true;
    else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (c === '<' && depth === 0) last = i;
  }
  return last;
}

/** A display name as the caller wrote it: quoted strings unquoted, everything else kept literally. */
function parsePhrase(s: string, field: string): string {
  let out = '';
  for (let i = 0; i < s.length; ) {
    if (s[i] === '"') {
      const q = readQuoted(s, i, field);
      out += q.content;
      i = q.end;
    } else {
      out += s[i++];
    }
  }
  return out.trim();
}

/**
 * One mailbox: `Name <local@domain>`, `"Name, Quoted" <local@domain>`, `<local@domain>`, `local@domain`
 * or `local@domain (Name)`. Throws MimeError naming `field`.
 */
export function parseMailbox(input: string, field = 'address'): Mailbox {
  if (typeof input !== 'string') throw invalid(field, 'expected a string');
  assertNoLineBreak(input, field);
  assertWellFormed(input, field);
  const s = input.trim();
  if (s.endsWith('>')) {
    const lt = angleStart(s);
    if (lt < 0) throw invalid(field, 'unbalanced angle brackets');
    const name = parsePhrase(s.slice(0, lt), field);
    const spec = parseAddrSpec(s.slice(lt + 1, -1), field);
    return name === '' ? { address: spec.address } : { address: spec.address, name };
  }
  const comment = /^(\S+)\s*\((.*)\)$/.exec(s);
  if (comment && !comment[1]!.startsWith('"')) {
    const spec = parseAddrSpec(comment[1]!, field);
    const name = comment[2]!.trim();
    return name === '' ? { address: spec.address } : { address: spec.address, name };
  }
  return { address: parseAddrSpec(s, field).address };
}

/**
 * The domain of a mailbox as written on the wire (A-label, lower case, or an address literal), or undefined when
 * it does not parse. The usual EHLO name for mail from that sender.
 */
export function mailboxDomain(input: string): string | undefined {
  try {
    const { address } = parseMailbox(input);
    return address.slice(address.lastIndexOf('@') + 1);
  } catch {
    return undefined;
  }
}

/** A list of mailboxes separated by `,` (or `;`) outside quotes, comments and brackets. */
export function parseAddressList(input: string, field = 'addresses'): Mailbox[] {
  if (typeof input !== 'string') throw invalid(field, 'expected a string');
  assertNoLineBreak(input, field);
  const parts: string[] = [];
  let inQuote = false;
  let depth = 0;
  let angle = false;
  let bracket = false;
  let start = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === '\\' && (inQuote || depth > 0)) i++;
    else if (inQuote) inQuote = c !== '"';
    else if (c === '"') inQuote = true;
    else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth > 0) continue;
    else if (c === '<') angle = true;
    else if (c === '>') angle = false;
    else if (c === '[') bracket = true;
    else if (c === ']') bracket = false;
    else if ((c === ',' || c === ';') && !angle && !bracket) {
      parts.push(input.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(input.slice(start));
  const out: Mailbox[] = [];
  for (const p of parts) {
    if (p.trim() === '') continue;
    out.push(parseMailbox(p, `${field}[${out.length}]`));
  }
  return out;
}
