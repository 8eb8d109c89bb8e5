/**
 * Form bodies: `application/x-www-form-urlencoded`, `multipart/form-data` (busboy; HTTP API hands binary bodies
 * over base64-encoded) and `application/json`. Text must be valid UTF-8; limits are enforced while parsing.
 */
import type busboy from 'busboy';
import { type FieldError, SendError, validationFailed } from '../send/errors.ts';
import { HttpError } from './failure.ts';
import { decodeUtf8, parseJsonBody } from './http.ts';

export interface UploadedFile {
  field: string;
  filename: string;
  contentType: string;
  content: Uint8Array;
}

export interface FormBody {
  /** Field name → values, in submission order. */
  fields: Map<string, string[]>;
  files: UploadedFile[];
  /** Values so far (repeats included) and their UTF-8 bytes: what the limits bound. */
  values: number;
  bytes: number;
}

const emptyBody = (): FormBody => ({ fields: new Map(), files: [], values: 0, bytes: 0 });

export interface FormBodyLimits {
  /** Values (a repeated field counts each time). */
  maxFields: number;
  /** Characters in a field name. */
  maxFieldNameChars: number;
  /** Bytes of all field values together. */
  maxFieldBytes: number;
  maxFiles: number;
  maxFileBytes: number;
}

/** Characters in an uploaded file's name. */
export const MAX_FILENAME_CHARS = 255;

export async function parseFormBody(type: string, contentType: string, body: Buffer, limits: FormBodyLimits) {
  switch (type) {
    case 'application/x-www-form-urlencoded':
      return parseUrlEncoded(body, limits);
    case 'multipart/form-data': {
      // Loaded by the first multipart post, not at cold start: urlencoded and JSON forms never need it.
      const { default: parser } = await import('./multipart-chunk.ts');
      return parseMultipart(parser, contentType, body, limits);
    }
    case 'application/json':
      return parseJsonForm(body, limits);
    default:
      throw new HttpError(
        'unsupported_media_type',
        'forms take application/x-www-form-urlencoded, multipart/form-data or application/json',
        { errors: [{ field: 'content-type', code: 'unsupported', message: type || '(none)' }] },
      );
  }
}

/** A field name is present and at most `maxFieldNameChars` long; a longer one is named by its first characters. */
function checkFieldName(name: string | undefined, limits: FormBodyLimits): string {
  if (!name) {
    throw validationFailed([
      { field: 'body', code: 'missing_field_name', message: 'a part has no field name' },
    ]);
  }
  if (name.length > limits.maxFieldNameChars) {
    const field = name.slice(0, limits.maxFieldNameChars);
    throw validationFailed([
      {
        field,
        code: 'name_too_long',
        message: `field names have at most ${limits.maxFieldNameChars} characters`,
      },
    ]);
  }
  return name;
}

function fieldsTooLarge(limits: FormBodyLimits): SendError {
  return new SendError('payload_too_large', `the form fields are larger than ${limits.maxFieldBytes} bytes`, {
    errors: [{ field: 'body', code: 'too_large', message: `fields: at most ${limits.maxFieldBytes} bytes` }],
  });
}

function addField(out: FormBody, name: string | undefined, value: string, limits: FormBodyLimits): void {
  const checked = checkFieldName(name, limits);
  if (++out.values > limits.maxFields) {
    throw validationFailed([
      { field: 'body', code: 'too_many_fields', message: `at most ${limits.maxFields}` },
    ]);
  }
  out.bytes += Buffer.byteLength(value, 'utf8');
  if (out.bytes > limits.maxFieldBytes) throw fieldsTooLarge(limits);
  const list = out.fields.get(checked);
  if (list) list.push(value);
  else out.fields.set(checked, [value]);
}

/** `a=1&b=%C3%A9+x`: percent-decoded to bytes first, then strict UTF-8 (URLSearchParams would hide bad bytes). */
export function parseUrlEncoded(body: Buffer, limits: FormBodyLimits): FormBody {
  const out = emptyBody();
  const text = decodeUtf8(body);
  if (text.trim() === '') return out;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawName = eq >= 0 ? pair.slice(0, eq) : pair;
    const rawValue = eq >= 0 ? pair.slice(eq + 1) : '';
    const name = percentDecode(rawName, 'body');
    addField(out, name, percentDecode(rawValue, name), limits);
  }
  return out;
}

function percentDecode(s: string, field: string): string {
  const plus = s.replace(/\+/gu, ' ');
  if (!plus.includes('%')) return plus;
  const bytes: number[] = [];
  for (let i = 0; i < plus.length; i++) {
    const c = plus.charCodeAt(i);
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/u.test(plus.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(plus.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) bytes.push(c);
    else for (const b of Buffer.from(plus[i]!, 'utf8')) bytes.push(b);
  }
  return decodeUtf8(Uint8Array.from(bytes), field);
}

function parseJsonForm(body: Buffer, limits: FormBodyLimits): FormBody {
  const value = parseJsonBody(decodeUtf8(body));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw validationFailed([
      { field: 'body', code: 'invalid_type', message: 'must be a JSON object of fields' },
    ]);
  }
  const out = emptyBody();
  const errors: FieldError[] = [];
  for (const [name, v] of Object.entries(value)) {
    const values = Array.isArray(v) ? v : [v];
    for (const item of values) {
      if (typeof item === 'string') addField(out, name, item, limits);
      else if (typeof item === 'number' || typeof item === 'boolean')
        addField(out, name, String(item), limits);
      else if (item !== null) {
        errors.push({
          field: name,
          code: 'invalid_type',
          message: 'must be a string, number, boolean or array',
        });
      }
    }
  }
  if (errors.length) throw validationFailed(errors);
  return out;
}

function parseMultipart(
  parser: typeof busboy,
  contentType: string,
  body: Buffer,
  limits: FormBodyLimits,
): Promise<FormBody> {
  return new Promise((resolve, reject) => {
    const out = emptyBody();
    let failure: SendError | undefined;
    const fail = (e: SendError) => {
      failure ??= e;
    };
    let bb: busboy.Busboy;
    try {
      bb = multipartParser(parser, contentType, limits);
    } catch {
      reject(
        validationFailed([
          { field: 'content-type', code: 'invalid_multipart', message: 'missing or bad boundary' },
        ]),
      );
      return;
    }
    bb.on('field', (name, value, info) => {
      try {
        if (info.valueTruncated) throw fieldsTooLarge(limits);
        const checked = checkFieldName(name, limits);
        if (value.includes('\uFFFD') || checked.includes('\uFFFD')) {
          throw validationFailed([{ field: checked, code: 'invalid_utf8', message: 'is not valid UTF-8' }]);
        }
        addField(out, checked, value, limits);
      } catch (e) {
        fail(e as SendError);
      }
    });
    bb.on('file', (name, stream, info) => collectFile(name, stream, info, out, limits, fail));
    const tooMany = (what: string) => () =>
      fail(validationFailed([{ field: 'body', code: `too_many_${what}`, message: `too many ${what}` }]));
    bb.on('fieldsLimit', tooMany('fields'));
    bb.on('partsLimit', tooMany('parts'));
    bb.on('filesLimit', tooMany('files'));
    bb.on('error', () =>
      reject(
        validationFailed([{ field: 'body', code: 'invalid_multipart', message: 'malformed multipart body' }]),
      ),
    );
    bb.on('close', () => (failure ? reject(failure) : resolve(out)));
    bb.end(body);
  });
}

/** busboy within the form's bounds; throws on a missing or bad boundary. */
function multipartParser(parser: typeof busboy, contentType: string, limits: FormBodyLimits): busboy.Busboy {
  return parser({
    headers: { 'content-type': contentType },
    defParamCharset: 'utf8',
    limits: {
      fields: limits.maxFields,
      fieldSize: limits.maxFieldBytes,
      // Browsers send an empty part for an unused <input type=file>; count real files ourselves.
      files: limits.maxFiles + 8,
      fileSize: limits.maxFileBytes,
      parts: limits.maxFields + limits.maxFiles + 8,
      headerPairs: 50,
    },
  });
}

/** One file part: read to its end, then checked and added to `out` (or its first failure handed to `fail`). */
function collectFile(
  name: string,
  stream: NodeJS.ReadableStream & { on(event: 'limit', cb: () => void): unknown },
  info: busboy.FileInfo,
  out: FormBody,
  limits: FormBodyLimits,
  fail: (e: SendError) => void,
): void {
  const chunks: Buffer[] = [];
  let truncated = false;
  stream.on('data', (c: Buffer) => chunks.push(c));
  // A body cut off inside a file: busboy errors the file stream too (its own 'error' answers 400 below);
  // unheard, that error would be an uncaught exception and crash the function.
  stream.on('error', () => {});
  stream.on('limit', () => {
    truncated = true;
  });
  // 'end' (not 'close'): busboy waits for every file stream's end before it emits its own 'close'.
  stream.on('end', () => {
    const content = Buffer.concat(chunks);
    if (!info.filename && content.length === 0) return; // an unused file input
    let refusal: SendError | undefined;
    try {
      checkFieldName(name, limits);
      refusal = fileRefusal(name, info, truncated, out, limits);
    } catch (e) {
      refusal = e as SendError;
    }
    if (refusal) {
      fail(refusal);
      return;
    }
    out.files.push({
      field: name,
      filename: info.filename || 'attachment',
      contentType: info.mimeType || 'application/octet-stream',
      content: new Uint8Array(content.buffer, content.byteOffset, content.length),
    });
  });
}

/** Why a file part is not taken, checked in this order; undefined when it is. */
function fileRefusal(
  name: string,
  info: busboy.FileInfo,
  truncated: boolean,
  out: FormBody,
  limits: FormBodyLimits,
): SendError | undefined {
  if ((info.filename ?? '').length > MAX_FILENAME_CHARS) {
    return validationFailed([
      { field: name, code: 'filename_too_long', message: `at most ${MAX_FILENAME_CHARS} characters` },
    ]);
  }
  if (limits.maxFiles === 0) {
    return validationFailed([
      { field: name, code: 'attachments_not_allowed', message: 'this form takes no files' },
    ]);
  }
  if (truncated) {
    return new SendError('payload_too_large', `file in ${name} is larger than ${limits.maxFileBytes} bytes`, {
      errors: [{ field: name, code: 'file_too_large', message: `at most ${limits.maxFileBytes} bytes` }],
    });
  }
  if (out.files.length >= limits.maxFiles) {
    return validationFailed([
      { field: name, code: 'too_many_files', message: `at most ${limits.maxFiles} files` },
    ]);
  }
  if ((info.filename ?? '').includes('\uFFFD')) {
    return validationFailed([{ field: name, code: 'invalid_utf8', message: 'file name is not valid UTF-8' }]);
  }
  return undefined;
}
