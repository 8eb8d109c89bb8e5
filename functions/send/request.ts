/**
 * The send request (`POST /send`, EventBridge `detail`, direct invoke): one message or a batch.
 * Structure is checked with valibot; content rules (CR/LF in header-bound fields, strict base64, sizes,
 * recipient count, address syntax) produce field errors with stable codes. Nothing here touches the network.
 */
import * as v from 'valibot';
import { MimeError } from '../mime/error.ts';
import { lineBreakIn, parseMailbox } from '../mime/index.ts';
import type { Mailbox } from '../mime/types.ts';
import { type FieldError, SendError, validationFailed } from './errors.ts';
import type { SendLimits } from './types.ts';

/** RFC 5322 field-name characters (printable ASCII but `:`); the length is `limits.maxHeaderNameChars`. */
const HEADER_NAME = /^[!-9;-~]+$/u;

/** Defaults of the extra-header limits (`limits.maxHeaders`, `limits.maxHeaderNameChars`). */
export const DEFAULT_HEADER_LIMITS = { maxHeaders: 50, maxHeaderNameChars: 64 } as const;
const CONTENT_TYPE = /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+(\s*;.*)?$/u;

const AddressValue = v.union([v.string(), v.array(v.string())]);

/** An idempotency key as a caller writes it: 1–256 printable ASCII characters (space to `~`). */
export const IdempotencyKeySchema = v.pipe(
  v.string(),
  v.minLength(1, 'must not be empty'),
  v.maxLength(256, 'at most 256 characters'),
  v.regex(/^[\x20-\x7e]+$/u, 'printable ASCII only'),
);

export const AttachmentSchema = v.strictObject({
  filename: v.string(),
  contentType: v.string(),
  content: v.string(),
});

export const SendRequestSchema = v.strictObject({
  from: v.optional(v.string()),
  to: AddressValue,
  cc: v.optional(AddressValue),
  bcc: v.optional(AddressValue),
  replyTo: v.optional(AddressValue),
  subject: v.string(),
  text: v.optional(v.string()),
  html: v.optional(v.string()),
  attachments: v.optional(v.array(AttachmentSchema)),
  headers: v.optional(v.record(v.string(), v.string())),
  /** Batch messages, EventBridge details and direct invokes: this message's own idempotency key. */
  idempotencyKey: v.optional(IdempotencyKeySchema),
});

export const BatchRequestSchema = v.strictObject({
  messages: v.array(v.unknown()),
  idempotencyKey: v.optional(IdempotencyKeySchema),
});

/** The request as sent by a caller. */
export type SendRequest = v.InferOutput<typeof SendRequestSchema>;

/** A request that passed every rule: addresses parsed, attachments decoded. */
export interface ValidSendRequest {
  from?: Mailbox;
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  replyTo: Mailbox[];
  subject: string;
  text?: string;
  html?: string;
  attachments: Array<{ filename: string; contentType: string; content: Uint8Array }>;
  headers: Record<string, string>;
  /**
   * The Reply-To is a convenience, not part of the message (a form visitor's address, also in the body): an
   * address in it that needs SMTPUTF8 is left out when the server does not offer SMTPUTF8, instead of failing.
   */
  replyToOptional?: true;
}

/** A JSON object: not null, not an array (what every request, event and payload must be). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Is this a batch (`{ messages: [...] }`) rather than one message? */
export function isBatchRequest(value: unknown): value is { messages: unknown } {
  return isJsonObject(value) && 'messages' in value;
}

/** Validate one message; throws `SendError` (`validation_failed` or `payload_too_large`). */
export function validateSendRequest(input: unknown, limits: SendLimits, prefix = ''): ValidSendRequest {
  checkHeaderCount(input, limits, prefix);
  const parsed = v.safeParse(SendRequestSchema, input);
  if (!parsed.success) throw validationFailed(issuesToFieldErrors(parsed.issues, prefix));
  const req = parsed.output;
  const c: Checks = { errors: [], tooLarge: [], p: (f) => (prefix ? `${prefix}.${f}` : f) };
  const to = addresses(c, 'to', req.to);
  const cc = addresses(c, 'cc', req.cc);
  const bcc = addresses(c, 'bcc', req.bcc);
  const replyTo = addresses(c, 'replyTo', req.replyTo);
  const from = req.from === undefined ? undefined : addresses(c, 'from', req.from)[0];
  checkRecipientCount(c, req, limits);
  checkHeaderText(req.subject, c.p('subject'), c.errors);
  checkBodies(c, req, limits);
  const attachments = checkAttachments(c, req, limits);
  const headers = checkHeaders(c, req, limits);

  if (c.errors.length) throw validationFailed([...c.errors, ...c.tooLarge]);
  if (c.tooLarge.length) {
    throw new SendError('payload_too_large', c.tooLarge.map((e) => `${e.field}: ${e.message}`).join('; '), {
      errors: c.tooLarge,
    });
  }
  const valid: ValidSendRequest = { to, cc, bcc, replyTo, subject: req.subject, attachments, headers };
  if (from) valid.from = from;
  if (req.text !== undefined) valid.text = req.text;
  if (req.html !== undefined) valid.html = req.html;
  return valid;
}

type ParsedRequest = v.InferOutput<typeof SendRequestSchema>;

/** What one message's checks collect: refusals (400), sizes over a limit (413), and the field path. */
interface Checks {
  errors: FieldError[];
  tooLarge: FieldError[];
  p: (field: string) => string;
}

function addresses(
  c: Checks,
  name: 'from' | 'to' | 'cc' | 'bcc' | 'replyTo',
  value: string | string[] | undefined,
): Mailbox[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  const out: Mailbox[] = [];
  list.forEach((raw, i) => {
    const field = c.p(Array.isArray(value) ? `${name}[${i}]` : name);
    if (checkHeaderText(raw, field, c.errors)) return;
    try {
      out.push(parseMailbox(raw));
    } catch (e) {
      if (e instanceof MimeError) c.errors.push({ field, code: e.code, message: mimeDetail(e) });
      else c.errors.push({ field, code: 'invalid_address', message: 'is not a valid address' });
    }
  });
  return out;
}

function checkRecipientCount(c: Checks, req: ParsedRequest, limits: SendLimits): void {
  const countOf = (x: string | string[] | undefined) =>
    x === undefined ? 0 : Array.isArray(x) ? x.length : 1;
  const recipients = countOf(req.to) + countOf(req.cc) + countOf(req.bcc);
  if (recipients === 0) {
    c.errors.push({ field: c.p('to'), code: 'required', message: 'at least one recipient is required' });
  }
  if (recipients > limits.maxRecipients) {
    c.errors.push({
      field: c.p('to'),
      code: 'too_many_recipients',
      message: `${recipients} recipients; at most ${limits.maxRecipients} (to + cc + bcc)`,
    });
  }
}

function checkBodies(c: Checks, req: ParsedRequest, limits: SendLimits): void {
  if (req.text === undefined && req.html === undefined) {
    c.errors.push({ field: c.p('text'), code: 'required', message: 'text or html is required' });
  }
  for (const key of ['text', 'html'] as const) {
    const body = req[key];
    if (body !== undefined && Buffer.byteLength(body, 'utf8') > limits.maxBodyBytes) {
      c.tooLarge.push({
        field: c.p(key),
        code: 'too_large',
        message: `larger than ${limits.maxBodyBytes} bytes`,
      });
    }
  }
}

function checkAttachments(
  c: Checks,
  req: ParsedRequest,
  limits: SendLimits,
): ValidSendRequest['attachments'] {
  const attachments: ValidSendRequest['attachments'] = [];
  let attachmentBytes = 0;
  (req.attachments ?? []).forEach((a, i) => {
    const f = (x: string) => c.p(`attachments[${i}].${x}`);
    checkHeaderText(a.filename, f('filename'), c.errors);
    if (a.filename.trim() === '')
      c.errors.push({ field: f('filename'), code: 'required', message: 'must not be empty' });
    if (!lineBreakIn(a.contentType) && !CONTENT_TYPE.test(a.contentType)) {
      c.errors.push({
        field: f('contentType'),
        code: 'invalid_content_type',
        message: 'must be type/subtype',
      });
    } else checkHeaderText(a.contentType, f('contentType'), c.errors);
    const bytes = decodeBase64Strict(a.content);
    if (!bytes) {
      c.errors.push({
        field: f('content'),
        code: 'invalid_base64',
        message: 'is not valid base64 (RFC 4648, padded, no whitespace)',
      });
      return;
    }
    attachmentBytes += bytes.length;
    attachments.push({ filename: a.filename, contentType: a.contentType, content: bytes });
  });
  if (attachmentBytes > limits.maxAttachmentBytes) {
    c.tooLarge.push({
      field: c.p('attachments'),
      code: 'too_large',
      message: `attachments total ${attachmentBytes} bytes; at most ${limits.maxAttachmentBytes}`,
    });
  }
  return attachments;
}

function checkHeaders(c: Checks, req: ParsedRequest, limits: SendLimits): Record<string, string> {
  const headers: Record<string, string> = {};
  const maxName = limits.maxHeaderNameChars ?? DEFAULT_HEADER_LIMITS.maxHeaderNameChars;
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    const field = c.p(`headers.${name.slice(0, maxName)}`);
    if (name.length > maxName) {
      c.errors.push({ field, code: 'header_name_too_long', message: `at most ${maxName} characters` });
      continue;
    }
    if (!HEADER_NAME.test(name)) {
      c.errors.push({ field, code: 'invalid_header_name', message: 'is not a valid header field name' });
      continue;
    }
    if (!checkHeaderText(value, field, c.errors)) headers[name] = value;
  }
  return headers;
}

/** More than `limits.maxHeaders` extra headers → one error, before anything looks at them one by one. */
function checkHeaderCount(input: unknown, limits: SendLimits, prefix: string): void {
  const headers = (input as { headers?: unknown } | null)?.headers;
  if (typeof headers !== 'object' || headers === null) return;
  const max = limits.maxHeaders ?? DEFAULT_HEADER_LIMITS.maxHeaders;
  if (Object.keys(headers).length <= max) return;
  throw validationFailed([
    { field: prefix ? `${prefix}.headers` : 'headers', code: 'too_many_headers', message: `at most ${max}` },
  ]);
}

/** Validate the batch envelope; items are validated one by one by the caller (one bad item never stops others). */
export function validateBatchEnvelope(input: unknown, limits: SendLimits): unknown[] {
  const parsed = v.safeParse(BatchRequestSchema, input);
  if (!parsed.success) throw validationFailed(issuesToFieldErrors(parsed.issues, ''));
  const n = parsed.output.messages.length;
  if (n === 0) {
    throw validationFailed([
      { field: 'messages', code: 'required', message: 'at least one message is required' },
    ]);
  }
  if (n > limits.maxBatch) {
    throw validationFailed([
      { field: 'messages', code: 'too_many_messages', message: `${n} messages; at most ${limits.maxBatch}` },
    ]);
  }
  return parsed.output.messages;
}

/** Returns true (and records an error) when a header-bound value contains CR, LF or NUL. */
function checkHeaderText(value: string, field: string, errors: FieldError[]): boolean {
  const what = lineBreakIn(value);
  if (!what) return false;
  errors.push({
    field,
    code: 'header_injection',
    message: `contains ${what}; header fields must be one line`,
  });
  return true;
}

/** A `MimeError`'s message without its `field: ` prefix (the field is reported on its own). */
export function mimeDetail(e: MimeError): string {
  const prefix = `${e.field}: `;
  return e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
}

/** RFC 4648 §4 base64, padded, canonical, no whitespace or line breaks. `undefined` when invalid. */
export function decodeBase64Strict(s: string): Uint8Array | undefined {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/u.test(s)) return undefined;
  const bytes = Buffer.from(s, 'base64');
  if (bytes.toString('base64') !== s) return undefined; // non-zero padding bits
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Valibot issues → field errors with stable codes and no echoed values. */
export function issuesToFieldErrors(issues: readonly v.BaseIssue<unknown>[], prefix: string): FieldError[] {
  return issues.map((issue) => {
    const path = (issue.path ?? [])
      .map((item) => item.key)
      .reduce<string>((acc, key) => {
        if (typeof key === 'number') return `${acc}[${key}]`;
        return acc ? `${acc}.${String(key)}` : String(key);
      }, prefix);
    const field = path || prefix || 'body';
    if (issue.type === 'strict_object' && issue.expected === 'never') {
      return { field, code: 'unknown_field', message: 'is not a known field' };
    }
    if (issue.received === 'undefined') {
      return { field, code: 'required', message: `is required (${issue.expected ?? 'value'})` };
    }
    if (issue.kind === 'schema') {
      return { field, code: 'invalid_type', message: `must be ${issue.expected ?? 'a valid value'}` };
    }
    return { field, code: 'invalid', message: issue.message.replace(/\s*but received[\s\S]*$/u, '') };
  });
}
