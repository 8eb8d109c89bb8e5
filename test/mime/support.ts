/** Shared helpers for the message-layer tests: deterministic options, parsing, wire-format checks. */
import { domainToUnicode } from 'node:url';
import { type ParsedMail, simpleParser } from 'mailparser';
import type { ComposeOptions } from '../../functions/mime/index.ts';

/** A deterministic `random` (xorshift32 from a seed) and a fixed clock. */
export function fixedOptions(seed = 1, extra: ComposeOptions = {}): ComposeOptions {
  let x = seed >>> 0 || 1;
  return {
    random: (n) => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        out[i] = x & 0xff;
      }
      return out;
    },
    now: () => new Date(Date.UTC(2026, 10, 26, 4, 5, 6)),
    ...extra,
  };
}

export function parse(bytes: Uint8Array): Promise<ParsedMail> {
  return simpleParser(Buffer.from(bytes), { keepCidLinks: true });
}

/** Decodes an unstructured header value with mailparser (by handing it over as a Subject). */
export async function decodeUnstructured(value: string): Promise<string> {
  const p = await simpleParser(Buffer.from(`Subject: ${value}\r\n\r\n`));
  return p.subject ?? '';
}

/** What mailparser reports for an address we wrote with an A-label domain. */
export function unicodeAddress(address: string): string {
  const at = address.lastIndexOf('@');
  return address.slice(0, at) + '@' + domainToUnicode(address.slice(at + 1));
}

/** Text as a MIME text part carries it: line breaks become CRLF, which parsers return as LF. */
export function lf(text: string): string {
  return text.replace(/\r\n|\r|\n/g, '\n');
}

export interface WireReport {
  problems: string[];
  headerLines: string[];
}

/**
 * Checks the wire format: every line ends in CRLF (no bare CR/LF), no line over 998 octets, and the
 * top-level header section is well formed (field lines `Name: …`, continuation lines start with WSP and
 * are not blank, ASCII unless `utf8Headers`).
 */
export function checkWire(bytes: Uint8Array, utf8Headers = false): WireReport {
  const problems: string[] = [];
  const buf = Buffer.from(bytes);
  if (buf.length < 2 || buf[buf.length - 2] !== 13 || buf[buf.length - 1] !== 10) {
    problems.push('message does not end with CRLF');
  }
  let start = 0;
  let lineNo = 0;
  const lines: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] !== 10) problems.push(`bare CR at ${i}`);
    if (buf[i] === 10) {
      if (buf[i - 1] !== 13) problems.push(`bare LF at ${i}`);
      const line = buf.subarray(start, i - 1);
      if (line.length > 998) problems.push(`line ${lineNo} has ${line.length} octets`);
      lines.push(line);
      lineNo++;
      start = i + 1;
    }
  }
  const headerLines: string[] = [];
  for (const line of lines) {
    if (line.length === 0) break;
    const s = line.toString('utf8');
    headerLines.push(s);
    if (!utf8Headers && line.some((b) => b > 127)) problems.push(`non-ASCII header line: ${s}`);
    if (/^[ \t]/.test(s)) {
      if (s.trim() === '') problems.push('whitespace-only continuation line');
    } else if (!/^[\x21-\x39\x3b-\x7e]+:/.test(s)) {
      problems.push(`not a header field line: ${s}`);
    }
  }
  if (headerLines.length === lines.length) problems.push('no empty line after the header section');
  return { problems, headerLines };
}

/** Longest line of the message, in octets (CRLF excluded). */
export function longestLine(bytes: Uint8Array): number {
  let max = 0;
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 10) {
      max = Math.max(max, i - 1 - start);
      start = i + 1;
    }
  }
  return max;
}
