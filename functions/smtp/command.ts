/**
 * THE choke point: every SMTP command line the client writes is built here, and nowhere else.
 *
 * Any argument — address, EHLO name, AUTH data, ESMTP parameter — containing CR, LF or NUL throws an
 * `SmtpError` (kind `usage`) while the command is being built, i.e. before a single byte of it is written.
 * Each command carries its redacted form for errors and transcripts (`AUTH PLAIN ***`).
 */
import { isIP } from 'node:net';
import { SmtpError } from './error.ts';
import type { Phase } from './types.ts';

export type CommandKind =
  | 'ehlo'
  | 'starttls'
  | 'auth'
  | 'sasl'
  | 'mail'
  | 'rcpt'
  | 'data'
  | 'bdat'
  | 'rset'
  | 'quit';

export interface Command<K extends CommandKind = CommandKind> {
  kind: K;
  phase: Phase;
  /** The line without CRLF. May hold secrets (AUTH): never log it, log `redacted`. */
  line: string;
  /** Safe for logs, errors and transcripts. */
  redacted: string;
}

/** ESMTP parameter on MAIL/RCPT: `SIZE=123`, `BODY=8BITMIME`, `SMTPUTF8` (value undefined). */
export interface EsmtpParam {
  keyword: string;
  value?: string;
}

const FORBIDDEN = /[\r\n\0]/;

/** Refuse CR, LF and NUL: the only way a value could smuggle a second command onto the wire. */
export function assertNoLineBreak(value: string, what: string, phase: Phase): void {
  if (FORBIDDEN.test(value)) {
    throw new SmtpError(`${what} contains CR, LF or NUL; refusing to build the command`, {
      phase,
      kind: 'usage',
    });
  }
}

function usage(message: string, phase: Phase): SmtpError {
  return new SmtpError(message, { phase, kind: 'usage' });
}

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const DOMAIN = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

/** RFC 5321 §4.1.3 / §2.3.5: a domain or an address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`). */
export function isValidClientName(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  if (name.startsWith('[') && name.endsWith(']')) {
    const inner = name.slice(1, -1);
    if (/^IPv6:/i.test(inner)) return isIP(inner.slice(5)) === 6;
    return isIP(inner) === 4;
  }
  return DOMAIN.test(name);
}

/** Whether an address needs SMTPUTF8 (RFC 6531). */
export const isNonAscii = (s: string): boolean => /[^\x00-\x7f]/.test(s);

/** A mailbox for a path (`<…>`): no CR/LF/NUL, no other controls, no angle brackets, no bare spaces. */
export function assertAddress(address: string, phase: Phase): void {
  assertNoLineBreak(address, phase === 'mail' ? 'sender address' : 'recipient address', phase);
  // The message never repeats the address: it reaches logs and error answers, and a local part is personal data.
  if (/[\x00-\x1f\x7f<>]/.test(address))
    throw usage('invalid address (control character or angle bracket)', phase);
  if (/\s/.test(address) && !/^"[^"]*"@[^\s]+$/.test(address)) {
    throw usage('invalid address (whitespace)', phase);
  }
  if (address.length > 320) throw usage('address longer than 320 characters', phase);
}

function renderParams(params: EsmtpParam[], phase: Phase): string {
  let s = '';
  for (const p of params) {
    assertNoLineBreak(p.keyword, 'ESMTP parameter keyword', phase);
    if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(p.keyword))
      throw usage(`invalid ESMTP keyword ${p.keyword}`, phase);
    s += ` ${p.keyword}`;
    if (p.value !== undefined) {
      assertNoLineBreak(p.value, `ESMTP parameter ${p.keyword}`, phase);
      // esmtp-value: %d33-60 / %d62-126 (no space, no '=', no controls); UTF-8 allowed with SMTPUTF8
      if (!/^[^\x00-\x20=\x7f]+$/.test(p.value))
        throw usage(`invalid value for ESMTP parameter ${p.keyword}`, phase);
      s += `=${p.value}`;
    }
  }
  return s;
}

function plain<K extends CommandKind>(kind: K, phase: Phase, line: string): Command<K> {
  return { kind, phase, line, redacted: line };
}

export function ehlo(clientName: string): Command<'ehlo'> {
  assertNoLineBreak(clientName, 'EHLO name', 'ehlo');
  if (!isValidClientName(clientName)) {
    throw usage(
      `invalid EHLO name ${JSON.stringify(clientName)} (need a domain or an address literal)`,
      'ehlo',
    );
  }
  return plain('ehlo', 'ehlo', `EHLO ${clientName}`);
}

export const starttls = (): Command<'starttls'> => plain('starttls', 'starttls', 'STARTTLS');

/** `AUTH <mech> [initial-response]`; the response is redacted. */
export function auth(mechanism: string, initialResponse?: string): Command<'auth'> {
  assertNoLineBreak(mechanism, 'SASL mechanism', 'auth');
  if (!/^[A-Z0-9_-]{1,20}$/.test(mechanism)) throw usage(`invalid SASL mechanism ${mechanism}`, 'auth');
  if (initialResponse === undefined) return plain('auth', 'auth', `AUTH ${mechanism}`);
  assertNoLineBreak(initialResponse, 'AUTH initial response', 'auth');
  if (!/^(?:[A-Za-z0-9+/]+={0,2}|=)$/.test(initialResponse))
    throw usage('AUTH initial response is not base64', 'auth');
  return {
    kind: 'auth',
    phase: 'auth',
    line: `AUTH ${mechanism} ${initialResponse}`,
    redacted: `AUTH ${mechanism} ***`,
  };
}

/** A SASL continuation line (answer to a 334). Always redacted. */
export function saslResponse(data: string): Command<'sasl'> {
  assertNoLineBreak(data, 'SASL response', 'auth');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw usage('SASL response is not base64', 'auth');
  return { kind: 'sasl', phase: 'auth', line: data, redacted: '***' };
}

export function mail(from: string, params: EsmtpParam[] = []): Command<'mail'> {
  if (from !== '') assertAddress(from, 'mail');
  return plain('mail', 'mail', `MAIL FROM:<${from}>${renderParams(params, 'mail')}`);
}

export function rcpt(to: string, params: EsmtpParam[] = []): Command<'rcpt'> {
  if (to === '') throw usage('empty recipient address', 'rcpt');
  assertAddress(to, 'rcpt');
  return plain('rcpt', 'rcpt', `RCPT TO:<${to}>${renderParams(params, 'rcpt')}`);
}

export const data = (): Command<'data'> => plain('data', 'data', 'DATA');

export function bdat(octets: number, last: boolean): Command<'bdat'> {
  if (!Number.isSafeInteger(octets) || octets < 0)
    throw usage('BDAT size must be a non-negative integer', 'data');
  return plain('bdat', 'data', `BDAT ${octets}${last ? ' LAST' : ''}`);
}

export const rset = (): Command<'rset'> => plain('rset', 'rset', 'RSET');
export const quit = (): Command<'quit'> => plain('quit', 'quit', 'QUIT');

const encoder = new TextEncoder();
/** The exact bytes of a command on the wire (UTF-8, CRLF). */
export const encodeCommand = (c: Command): Uint8Array => encoder.encode(`${c.line}\r\n`);
