/**
 * Files a visitor uploads through a public form, before they become attachments of the team's mail. Gmail rejects
 * a message that carries an executable, and SpamAssassin scores a double extension such as `invoice.pdf.html`
 * (PHISH_ATTACH), so:
 *
 * - the type is read from the content (magic bytes), never from the browser's claim or the name alone;
 * - executable content (PE/MZ, ELF, Mach-O) and Gmail's blocked extensions are refused, whatever the rest says;
 * - a double extension ending in an executable, `.html`, `.htm` or `.svg` is refused, and so is HTML or SVG
 *   content under a name that does not say so;
 * - text gets `charset=utf-8` when it is UTF-8 (other text goes as application/octet-stream: its charset is
 *   unknown);
 * - a form may narrow further with `attachments.allowedTypes` (`application/pdf`, `image/*`);
 * - the name loses any path, control and bidi characters and those Windows forbids.
 */
import { isUtf8 } from 'node:buffer';
import { type FieldError, validationFailed } from './errors.ts';

/** Gmail's blocked file types (support.google.com/mail/answer/6590), without the dot. */
export const BLOCKED_EXTENSIONS: ReadonlySet<string> = new Set(
  (
    'ade adp apk appx appxbundle bat cab chm cmd com cpl diagcab diagcfg diagpack dll dmg ex ex_ exe hta img ' +
    'ins iso isp jar jnlp js jse lib lnk mde mjs msc msi msix msixbundle msp mst nsh pif ps1 scr sct shb sys ' +
    'vb vbe vbs vhd vxd wsc wsf wsh xll'
  ).split(' '),
);
/** A second extension ending in one of these is a disguise (`invoice.pdf.html`). */
const ACTIVE_EXTENSIONS = new Set(['html', 'htm', 'svg']);

export interface Upload {
  /** The form field the file came in (named in errors). */
  field: string;
  filename: string;
  content: Uint8Array;
}

export interface AcceptedUpload {
  filename: string;
  contentType: string;
  content: Uint8Array;
}

export interface UploadPolicy {
  /** Media types the form takes (`type/subtype` or `type/*`); undefined: any type not refused above. */
  allowedTypes?: readonly string[];
}

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
/** All of `parts` (each bytes at an offset) are in `b`. */
const has = (b: Uint8Array, parts: Array<[number, number[]]>): boolean =>
  parts.every(([at, bytes]) => bytes.every((x, i) => b[at + i] === x));

/** Signatures of executable formats: refused under any name (MZ only in binary content: text may start so). */
const EXECUTABLE: number[][] = [
  [0x7f, 0x45, 0x4c, 0x46], // ELF
  [0xfe, 0xed, 0xfa, 0xce],
  [0xfe, 0xed, 0xfa, 0xcf],
  [0xce, 0xfa, 0xed, 0xfe],
  [0xcf, 0xfa, 0xed, 0xfe], // Mach-O
  [0xca, 0xfe, 0xba, 0xbe], // Mach-O universal (also Java class)
];

/** Binary signatures → media type. */
const MAGIC: Array<[string, Array<[number, number[]]>]> = [
  ['application/pdf', [[0, ascii('%PDF-')]]],
  ['image/png', [[0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]]]],
  ['image/jpeg', [[0, [0xff, 0xd8, 0xff]]]],
  ['image/gif', [[0, ascii('GIF87a')]]],
  ['image/gif', [[0, ascii('GIF89a')]]],
  [
    'image/webp',
    [
      [0, ascii('RIFF')],
      [8, ascii('WEBP')],
    ],
  ],
  [
    'audio/wav',
    [
      [0, ascii('RIFF')],
      [8, ascii('WAVE')],
    ],
  ],
  [
    'image/bmp',
    [
      [0, ascii('BM')],
      [6, [0, 0, 0, 0]],
    ],
  ],
  ['image/tiff', [[0, [0x49, 0x49, 0x2a, 0x00]]]],
  ['image/tiff', [[0, [0x4d, 0x4d, 0x00, 0x2a]]]],
  ['image/heic', [[4, ascii('ftypheic')]]],
  ['image/avif', [[4, ascii('ftypavif')]]],
  [
    'video/mp4',
    [
      [0, [0, 0]],
      [4, ascii('ftyp')],
    ],
  ],
  ['audio/mpeg', [[0, ascii('ID3\x03')]]],
  ['audio/mpeg', [[0, ascii('ID3\x04')]]],
  ['audio/ogg', [[0, ascii('OggS\x00')]]],
  ['application/gzip', [[0, [0x1f, 0x8b, 0x08]]]],
  ['application/x-7z-compressed', [[0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]]]],
  ['application/vnd.rar', [[0, ascii('Rar!\x1a\x07')]]],
  ['application/zip', [[0, ascii('PK\x03\x04')]]],
  ['application/zip', [[0, ascii('PK\x05\x06')]]],
  ['application/x-ole-storage', [[0, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]]]],
];

/** Containers whose documents are told apart by extension (OOXML/ODF are ZIPs, old Office files OLE). */
const BY_CONTAINER: Record<string, Record<string, string>> = {
  'application/zip': {
    docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
    odt: 'application/vnd.oasis.opendocument.text',
    ods: 'application/vnd.oasis.opendocument.spreadsheet',
    odp: 'application/vnd.oasis.opendocument.presentation',
    epub: 'application/epub+zip',
  },
  'application/x-ole-storage': {
    doc: 'application/msword',
    xls: 'application/vnd.ms-excel',
    ppt: 'application/vnd.ms-powerpoint',
  },
};

/** Text types by extension (the content is UTF-8 text without a binary signature). */
const TEXT_BY_EXTENSION: Record<string, string> = {
  csv: 'text/csv',
  ics: 'text/calendar',
  md: 'text/markdown',
  json: 'application/json',
  xml: 'application/xml',
  vcf: 'text/vcard',
};

/** Names that say "plain text": markup inside them goes as text, not as HTML/SVG. */
const PLAIN_TEXT_EXTENSIONS = new Set(['txt', 'text', 'log', 'md', 'csv']);

/** WHATWG MIME sniffing's HTML patterns (a tag name followed by space or `>`), and SVG. */
const HTML_START =
  /^(?:<!doctype html|<html|<head|<script|<iframe|<h1|<div|<font|<table|<a|<style|<title|<b|<body|<br|<p|<!--)[\s>]/i;
const SVG = /^(?:<\?xml[^>]*>\s*)?(?:<!--[\s\S]*?-->\s*)?(?:<!doctype svg[^>]*>\s*)?<svg[\s>]/i;

function textStart(content: Uint8Array): string {
  let s = Buffer.from(content.subarray(0, 1024)).toString('utf8');
  if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
  return s.trimStart();
}

/** The media type of the content: from its signature, else HTML/SVG/text by its start, else octet-stream. */
export function detectType(content: Uint8Array, extension: string): string {
  const text = !content.includes(0) && isUtf8(content);
  if (EXECUTABLE.some((sig) => has(content, [[0, sig]])) || (!text && has(content, [[0, ascii('MZ')]]))) {
    return 'application/x-executable';
  }
  const magic = MAGIC.find(([, parts]) => has(content, parts))?.[0];
  if (magic) {
    const byExt = BY_CONTAINER[magic];
    if (!byExt) return magic;
    return byExt[extension] ?? (magic === 'application/zip' ? magic : 'application/octet-stream');
  }
  const start = textStart(content);
  const markup = HTML_START.test(start) ? 'text/html' : SVG.test(start) ? 'image/svg+xml' : undefined;
  // Markup in a file named as plain text is sent as the text it is named (nothing renders it).
  if (markup && !(text && PLAIN_TEXT_EXTENSIONS.has(extension))) return markup;
  if (!text) return 'application/octet-stream';
  return TEXT_BY_EXTENSION[extension] ?? 'text/plain';
}

const FORBIDDEN_IN_NAME = /[\u0000-\u001f\u007f-\u009f"*:<>?|\\/\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/** The name as the team's mail will show it: no path, no control/bidi or Windows-forbidden characters. */
export function safeFileName(name: string): string {
  const base = name.split(/[\\/]/u).pop() ?? '';
  const clean = base
    .replace(FORBIDDEN_IN_NAME, '_')
    .replace(/[. ]+$/u, '') // Windows drops trailing dots and spaces: "setup.exe." is setup.exe
    .slice(0, 200);
  return clean === '' || /^\.+$/u.test(clean) ? 'attachment' : clean;
}

/**
 * The file names in a ZIP's central directory (Gmail also refuses a blocked type inside an archive). Bounded by
 * the directory's own entry count and the content's length; a malformed directory yields what was read.
 */
export function zipEntryNames(b: Uint8Array): string[] {
  const view = Buffer.from(b.buffer, b.byteOffset, b.length);
  const from = Math.max(0, b.length - 22 - 0xffff);
  let eocd = -1;
  for (let i = b.length - 22; i >= from; i--) {
    if (view.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return [];
  const count = view.readUInt16LE(eocd + 10);
  const names: string[] = [];
  let at = view.readUInt32LE(eocd + 16);
  for (let n = 0; n < count && at + 46 <= b.length && view.readUInt32LE(at) === 0x02014b50; n++) {
    const nameLen = view.readUInt16LE(at + 28);
    const next = at + 46 + nameLen + view.readUInt16LE(at + 30) + view.readUInt16LE(at + 32);
    if (at + 46 + nameLen > b.length) break;
    names.push(view.toString('utf8', at + 46, at + 46 + nameLen));
    at = next;
  }
  return names;
}

function extensions(name: string): string[] {
  return name.toLowerCase().split('.').slice(1);
}

/** Why this file is refused, or undefined. */
function refusal(
  name: string,
  type: string,
  inner: string[],
  policy: UploadPolicy,
): Omit<FieldError, 'field'> | undefined {
  const exts = extensions(name);
  const last = exts[exts.length - 1] ?? '';
  const shown = last.slice(0, 16);
  if (type === 'application/x-executable' || exts.some((e) => BLOCKED_EXTENSIONS.has(e))) {
    return { code: 'file_type_blocked', message: 'executable files are not accepted' };
  }
  if (inner.some((n) => extensions(n.split('/').pop() ?? '').some((e) => BLOCKED_EXTENSIONS.has(e)))) {
    return { code: 'file_type_blocked', message: 'archives holding executable files are not accepted' };
  }
  if (exts.length > 1 && ACTIVE_EXTENSIONS.has(last)) {
    return {
      code: 'file_type_blocked',
      message: `a file name with two extensions ending in .${shown} is not accepted`,
    };
  }
  const active = type === 'text/html' ? ['html', 'htm'] : type === 'image/svg+xml' ? ['svg'] : undefined;
  if (active && !active.includes(last)) {
    return { code: 'file_type_mismatch', message: 'the content of the file does not match its name' };
  }
  if (policy.allowedTypes && !policy.allowedTypes.some((t) => typeMatches(type, t))) {
    return { code: 'file_type_not_allowed', message: `files of type ${type} are not accepted by this form` };
  }
  return undefined;
}

function typeMatches(type: string, pattern: string): boolean {
  const p = pattern.toLowerCase();
  return p === type || (p.endsWith('/*') && type.startsWith(p.slice(0, -1)));
}

/**
 * The uploads as attachments (safe name, detected type, charset for text), or a validation error naming the field
 * of every refused file. Never echoes a file name.
 */
export function acceptUploads(files: readonly Upload[], policy: UploadPolicy = {}): AcceptedUpload[] {
  const errors: FieldError[] = [];
  const accepted: AcceptedUpload[] = [];
  for (const f of files) {
    const filename = safeFileName(f.filename);
    const exts = extensions(filename);
    const type = detectType(f.content, exts[exts.length - 1] ?? '');
    const inner = has(f.content, [[0, ascii('PK')]]) ? zipEntryNames(f.content) : [];
    const refused = refusal(filename, type, inner, policy);
    if (refused) {
      errors.push({ field: f.field, ...refused });
      continue;
    }
    const isText = type.startsWith('text/') || type === 'application/json' || type === 'application/xml';
    accepted.push({ filename, contentType: isText ? `${type}; charset=utf-8` : type, content: f.content });
  }
  if (errors.length) throw validationFailed(errors);
  return accepted;
}
