/** RFC 2045 §5 Content-Type values given by callers, and a small extension → type table. */
import { assertNoLineBreak, MimeError } from './error.ts';

const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const VALUE = `(?:${TOKEN}|"(?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\x20-\\x7e])*")`;
const PARAM = new RegExp(`^\\s*;\\s*(${TOKEN})\\s*=\\s*(${VALUE})`);
const TYPE = new RegExp(`^\\s*(${TOKEN})/(${TOKEN})`);

export interface MediaType {
  /** `type/subtype`, lower case. */
  type: string;
  /** Parameters as given, each `name=value`. */
  params: Array<[string, string]>;
}

/** Parses `type/subtype; a=b; c="d"`; refuses anything else and multipart types (the composer builds those). */
export function parseMediaType(input: string, field: string): MediaType {
  assertNoLineBreak(input, field);
  const m = TYPE.exec(input);
  if (!m) throw new MimeError(field, 'invalid_content_type', 'expected type/subtype');
  const type = `${m[1]}/${m[2]}`.toLowerCase();
  if (type.startsWith('multipart/') || type.startsWith('message/')) {
    // Attachments are sent base64, which RFC 2046 forbids for these: attach mail as application/octet-stream.
    throw new MimeError(field, 'invalid_content_type', `${type} cannot be an attachment type here`);
  }
  const params: Array<[string, string]> = [];
  let rest = input.slice(m[0].length);
  while (rest.trim() !== '') {
    const p = PARAM.exec(rest);
    if (!p) throw new MimeError(field, 'invalid_content_type', 'malformed parameter (expected ; name=value)');
    params.push([p[1]!.toLowerCase(), p[2]!]);
    rest = rest.slice(p[0].length);
  }
  return { type, params };
}

const BY_EXTENSION: Record<string, string> = {
  txt: 'text/plain',
  csv: 'text/csv',
  htm: 'text/html',
  html: 'text/html',
  ics: 'text/calendar',
  json: 'application/json',
  xml: 'application/xml',
  pdf: 'application/pdf',
  zip: 'application/zip',
  gz: 'application/gzip',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  ico: 'image/x-icon',
  mp3: 'audio/mpeg',
  mp4: 'video/mp4',
};

/** Media type for a file name, `application/octet-stream` when unknown. */
export function guessMediaType(filename: string): string {
  const dot = filename.lastIndexOf('.');
  const ext = dot >= 0 ? filename.slice(dot + 1).toLowerCase() : '';
  return BY_EXTENSION[ext] ?? 'application/octet-stream';
}
