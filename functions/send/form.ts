/**
 * "Form → message": the use case of a public form post, after the HTTP adapter has decoded its body. The form's
 * configuration fixes the recipients (never the request: no open relay), the subject, the field rules, the
 * honeypot and the redirect allowlist (no open redirect). Nothing here knows HTTP: `form-route.ts` decodes the
 * request, checks origin and CAPTCHA, and maps the outcome to an answer.
 */
import {
  type FormConfig,
  matchesRedirectAllowlist,
  TEMPLATE_FIELD,
  templateFields,
} from '../config/endpoint.ts';
import { escapedHtmlBytes, escapeHtml } from '../mime/html-text.ts';
import { lineBreakIn, parseMailbox } from '../mime/index.ts';
import type { Mailbox } from '../mime/types.ts';
import { type FieldError, validationFailed } from './errors.ts';
import type { ValidSendRequest } from './request.ts';
import { acceptUploads, type Upload } from './uploads.ts';

/** A decoded form post: field name → values in submission order, and the uploaded files. */
export interface FormSubmission {
  fields: Map<string, string[]>;
  files: readonly Upload[];
}

/** The fields that go into the message, in order, and the visitor's address (`email`) when valid. */
export interface ValidFields {
  fields: Array<[string, string]>;
  replyTo?: Mailbox;
}

/** Fields that choose the redirect target (never part of the message). */
export const REDIRECT_FIELDS = ['_next', 'redirect'] as const;

/** The honeypot: a bot filled the hidden field. Answered like a success; nothing is sent. */
export function isSpam(form: FormConfig, post: FormSubmission): boolean {
  return !!form.honeypot && (post.fields.get(form.honeypot)?.[0] ?? '').trim() !== '';
}

/** C0 and C1 controls, space, DEL: never part of a URL as written (`new URL` would silently drop some). */
const URL_FORBIDDEN = /[\u0000-\u0020\u007f-\u009f]/u;

/**
 * Where a browser post is sent after success: `_next`/`redirect` when the allowlist covers it (no open redirect),
 * else the form's `redirect`. The `Location` is always the parsed URL's normalised `href`, never the raw string;
 * a target with control characters or white space is refused.
 */
export function redirectTarget(
  form: FormConfig,
  first: (name: string) => string | undefined,
): string | undefined {
  for (const name of REDIRECT_FIELDS) {
    const requested = first(name);
    if (requested === undefined || requested === '') continue;
    const refuse = (code: string, message: string) => validationFailed([{ field: name, code, message }]);
    if (URL_FORBIDDEN.test(requested)) {
      throw refuse('invalid_redirect', 'the redirect target contains white space or control characters');
    }
    if (!form.redirectAllowlist || !matchesRedirectAllowlist(requested, form.redirectAllowlist)) {
      throw refuse('redirect_not_allowed', 'this redirect target is not in the allowlist');
    }
    return new URL(requested).href;
  }
  return form.redirect === undefined ? undefined : new URL(form.redirect).href;
}

/**
 * The post's fields checked against the form's rules: required, maxLength, type email; CR/LF refused in fields
 * that reach a header. `ignored`: fields that belong to the transport, not the message (the CAPTCHA widgets'
 * tokens). Throws `validation_failed` with field errors.
 */
export function validateFields(
  form: FormConfig,
  body: FormSubmission,
  ignored: Iterable<string>,
): ValidFields {
  const errors: FieldError[] = [];
  const rules = form.fields ?? {};
  const hidden = new Set<string>([...REDIRECT_FIELDS, ...ignored]);
  if (form.honeypot) hidden.add(form.honeypot);
  const headerBound = new Set(templateFields(form.subject));
  headerBound.add('email');

  for (const [name, rule] of Object.entries(rules)) {
    const values = body.fields.get(name) ?? [];
    const value = values.join(', ');
    if (rule.required && value.trim() === '') {
      errors.push({ field: name, code: 'required', message: 'is required' });
      continue;
    }
    if (rule.maxLength !== undefined && [...value].length > rule.maxLength) {
      errors.push({ field: name, code: 'too_long', message: `at most ${rule.maxLength} characters` });
    }
  }
  let replyTo: Mailbox | undefined;
  const fields: Array<[string, string]> = [];
  for (const [name, values] of body.fields) {
    if (hidden.has(name)) continue;
    const value = values.join(', ');
    if (headerBound.has(name) && lineBreakIn(value)) {
      errors.push({ field: name, code: 'header_injection', message: 'must be one line (no CR or LF)' });
      continue;
    }
    const isEmail = rules[name]?.type === 'email' || name === 'email';
    if (isEmail && value.trim() !== '') {
      try {
        const mailbox = parseMailbox(value.trim());
        if (name === 'email') replyTo = { address: mailbox.address };
      } catch {
        errors.push({ field: name, code: 'invalid_email', message: 'is not a valid email address' });
        continue;
      }
    }
    fields.push([name, value]);
  }
  if (errors.length) throw validationFailed(errors);
  return replyTo ? { fields, replyTo } : { fields };
}

/**
 * The notification: a text part listing the fields, and an HTML copy of the same table — left out when escaping
 * would make it larger than `maxHtmlBytes` (each `<` becomes five bytes), so the mail stays bounded by the body.
 */
export function formMessage(
  form: FormConfig,
  { fields, replyTo }: ValidFields,
  body: FormSubmission,
  maxHtmlBytes: number,
): ValidSendRequest {
  const files = acceptUploads(body.files, form.attachments); // the one upload policy (send/uploads.ts)
  const lookup = new Map(fields);
  const subject = form.subject
    .replace(TEMPLATE_FIELD, (_, name: string) => lookup.get(name) ?? '')
    .replace(/\s+/gu, ' ')
    .trim();
  const shortSubject = [...subject].slice(0, 400).join('');
  const label = (name: string) => form.fields?.[name]?.label ?? name;
  const text =
    fields
      .map(([name, value]) => {
        const lines = value.split(/\r\n|\r|\n/u);
        return lines.length > 1
          ? `${label(name)}:\n${lines.map((l) => `  ${l}`).join('\n')}`
          : `${label(name)}: ${value}`;
      })
      .join('\n') + (files.length ? `\n\nAttachments: ${files.map((f) => f.filename).join(', ')}\n` : '\n');
  const rowBytes = fields.reduce((n, [name, value]) => n + escapedHtmlBytes(label(name) + value) + 100, 0);
  const rows =
    rowBytes > maxHtmlBytes
      ? undefined
      : fields
          .map(
            ([name, value]) =>
              `<tr><th align="left" valign="top">${escapeHtml(label(name))}</th>` +
              `<td style="white-space:pre-wrap">${escapeHtml(value)}</td></tr>`,
          )
          .join('');
  const html =
    rows === undefined
      ? undefined
      : `<!doctype html><html><body><table cellpadding="4">${rows}</table></body></html>`;
  const addresses = (list: string[] | undefined) => (list ?? []).map((a) => parseMailbox(a));
  const valid: ValidSendRequest = {
    to: addresses(form.to),
    cc: addresses(form.cc),
    bcc: addresses(form.bcc),
    replyTo: replyTo ? [replyTo] : [],
    subject: shortSubject || 'Form submission',
    text,
    ...(html === undefined ? {} : { html }),
    attachments: files,
    // A notification, not a person's mail: no out-of-office reply to whatever address a visitor typed.
    headers: { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' },
    // The visitor's address is in the body; as Reply-To it must not make the mail need SMTPUTF8.
    replyToOptional: true,
  };
  return valid;
}
