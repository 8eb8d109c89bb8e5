/**
 * `POST /forms/{formId}` (public) and its `OPTIONS` preflight. The form's configuration fixes the recipients
 * (never the request: no open relay), the subject, the field rules, the honeypot, the allowed origins, the
 * redirect allowlist (no open redirect) and the CAPTCHA. CORS headers are on every response, errors included.
 */
import {
  type EndpointConfig,
  type FormConfig,
  matchesRedirectAllowlist,
  templateFields,
} from '../config/endpoint.ts';
import { lineBreakIn, parseMailbox } from '../mime/index.ts';
import type { Mailbox } from '../mime/types.ts';
import { deadlineFrom, deliverValid } from '../send/deliver.ts';
import { type ErrorCode, type FieldError, SendError, validationFailed } from '../send/errors.ts';
import type { ValidSendRequest } from '../send/request.ts';
import { acceptUploads } from '../send/uploads.ts';
import { CAPTCHA_FIELDS, CAPTCHA_PROVIDERS, verifyCaptcha } from './captcha.ts';
import { type FormBody, parseFormBody } from './form-body.ts';
import {
  bodyBytes,
  type HttpEvent,
  type HttpResult,
  header,
  json,
  mediaType,
  problem,
  toSendError,
} from './http.ts';
import { type InvocationLog, noteError } from './log.ts';
import { errorPage, escapedHtmlBytes, escapeHtml, thankYouPage } from './pages.ts';
import { type Runtime, requireConfig } from './runtime.ts';

const REDIRECT_FIELDS = ['_next', 'redirect'] as const;
/** Boundaries and part headers of a multipart body, on top of its fields and files. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/**
 * The CORS decision for a form response, in one place: `Vary: Origin` always; `Access-Control-Allow-Origin` only
 * for an origin the form lists in `allowedOrigins` (`*` there → `*`), never `null`. For a form id that does not
 * exist, an origin any form lists. A form without `allowedOrigins` takes posts from anywhere but lets no
 * cross-origin script read its answers.
 */
function corsHeaders(
  config: EndpointConfig | undefined,
  form: FormConfig | undefined,
  origin: string | undefined,
): Record<string, string> {
  const h: Record<string, string> = { vary: 'Origin' };
  if (!origin || origin === 'null' || !config) return h;
  const lists = form
    ? [form.allowedOrigins ?? []]
    : Object.values(config.forms ?? {}).map((f) => f.allowedOrigins ?? []);
  if (lists.some((list) => list.includes(origin))) h['access-control-allow-origin'] = origin;
  else if (lists.some((list) => list.includes('*'))) h['access-control-allow-origin'] = '*';
  return h;
}

function originAllowed(form: FormConfig, origin: string | undefined): boolean {
  // No Origin header: not a browser cross-site request (curl, server-side). The origin check is a browser
  // control; spam protection is the honeypot and the CAPTCHA.
  if (origin === undefined) return true;
  if (!form.allowedOrigins) return true;
  return form.allowedOrigins.includes('*') || form.allowedOrigins.includes(origin);
}

/** Browser navigation (HTML answers, 303 redirects) or a script (JSON answers)? */
function wantsJson(event: HttpEvent): boolean {
  const accept = (header(event, 'accept') ?? '').toLowerCase();
  const mode = (header(event, 'sec-fetch-mode') ?? '').toLowerCase();
  if (mode === 'cors' || mode === 'same-origin' || mode === 'no-cors') return true;
  if (mode === 'navigate') return false;
  if (accept.includes('application/json') || accept.includes('application/problem+json')) return true;
  if (accept.includes('text/html')) return false;
  return mediaType(event) === 'application/json' || accept === '';
}

export async function handleForm(
  event: HttpEvent,
  formId: string,
  method: string,
  remainingMs: number,
  rt: Runtime,
  log: InvocationLog,
): Promise<HttpResult> {
  log.formId = formId.slice(0, 64);
  const origin = header(event, 'origin');
  const asJson = wantsJson(event);
  let cors = corsHeaders(undefined, undefined, origin);
  try {
    const config = requireConfig(rt);
    const form = Object.hasOwn(config.forms ?? {}, formId) ? config.forms?.[formId] : undefined;
    cors = corsHeaders(config, form, origin);
    if (!form) {
      throw new SendError('form_not_found', `there is no form "${formId.slice(0, 64)}"`);
    }
    if (!originAllowed(form, origin)) {
      throw new SendError('origin_not_allowed', 'this origin may not submit this form', {
        errors: [
          { field: 'origin', code: 'origin_not_allowed', message: 'not in the form’s allowedOrigins' },
        ],
      });
    }
    if (method === 'OPTIONS') {
      log.outcome = 'preflight';
      log.status = 204;
      return {
        statusCode: 204,
        headers: {
          ...cors,
          'access-control-allow-methods': 'POST, OPTIONS',
          'access-control-allow-headers': 'content-type, accept',
          'access-control-max-age': '600',
        },
        body: '',
        isBase64Encoded: false,
      };
    }
    if (method !== 'POST') {
      throw new SendError('method_not_allowed', `${method} is not allowed here; use POST`);
    }
    return await submit(event, form, remainingMs, rt, log, cors, asJson);
  } catch (e) {
    const err = toSendError(e);
    if (err.code === 'internal_error') rt.logger.error('form handler failed', { error: e as Error });
    noteError(log, err);
    const shown = publicError(err);
    if (shown !== err) rt.logger.error('form request failed', { code: err.code, detail: err.message });
    const extra = err.code === 'method_not_allowed' ? { ...cors, allow: 'POST, OPTIONS' } : cors;
    if (asJson) return problem(shown, extra, log.requestId, 'public');
    const h: Record<string, string> = { ...extra };
    if (shown.transient && shown.retryAfter !== undefined) h['retry-after'] = String(shown.retryAfter);
    return errorPage(shown.status, shown.title, shown.message, shown.errors ?? [], h, shown.code);
  }
}

/** What a public (form) answer may say about a failure of the deployment itself: its code, nothing of its detail. */
const PUBLIC_DETAIL: Partial<Record<ErrorCode, string>> = {
  configuration_error: 'the form cannot send messages right now because of a problem on our side',
  internal_error: 'an unexpected error occurred; it has been logged',
  smtp_rejected: 'the mail server did not accept the message',
  smtp_unavailable: 'the mail server is unavailable; try again later',
};

/**
 * A form's answer never carries an ARN, an account id, a secret name or SMTP server text: failures of the
 * deployment keep their code, status and Retry-After and lose their detail (logged; `/send` callers, who are
 * IAM-authenticated, get it in full).
 */
function publicError(err: SendError): SendError {
  const detail = PUBLIC_DETAIL[err.code];
  if (detail === undefined) return err;
  return new SendError(err.code, detail, {
    status: err.status,
    ...(err.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {}),
  });
}

async function submit(
  event: HttpEvent,
  form: FormConfig,
  remainingMs: number,
  rt: Runtime,
  log: InvocationLog,
  cors: Record<string, string>,
  asJson: boolean,
): Promise<HttpResult> {
  const deadline = deadlineFrom(remainingMs);
  const maxFiles = form.attachments?.maxFiles ?? 0;
  const maxFileBytes = form.attachments?.maxFileBytes ?? 0;
  const type = mediaType(event);
  if (!['application/x-www-form-urlencoded', 'multipart/form-data', 'application/json'].includes(type)) {
    throw new SendError(
      'unsupported_media_type',
      'forms take application/x-www-form-urlencoded, multipart/form-data or application/json',
      { errors: [{ field: 'content-type', code: 'unsupported', message: type.slice(0, 64) || '(none)' }] },
    );
  }
  // The file allowance is for files only: an urlencoded or JSON body is bounded by maxBodyBytes alone.
  const { limits } = rt;
  const limit =
    type === 'multipart/form-data'
      ? limits.maxBodyBytes + maxFiles * maxFileBytes + MULTIPART_OVERHEAD_BYTES
      : limits.maxBodyBytes;
  const bytes = bodyBytes(event, limit);
  const body = await parseFormBody(type, header(event, 'content-type') ?? '', bytes, {
    maxFields: limits.maxFormFields,
    maxFieldNameChars: limits.maxFieldNameChars,
    maxFieldBytes: limits.maxBodyBytes,
    maxFiles,
    maxFileBytes: Math.max(maxFileBytes, 1),
  });
  const first = (name: string) => body.fields.get(name)?.[0];

  // The answer is decided before anything is sent: no error can follow a delivered message.
  const target = redirectTarget(form, first);
  const answer: HttpResult = asJson
    ? json(200, { ok: true }, cors)
    : target
      ? { statusCode: 303, headers: { ...cors, location: target }, body: '', isBase64Encoded: false }
      : thankYouPage(cors);

  // Honeypot: a bot filled the hidden field. Same answer as a success; nothing is sent.
  if (form.honeypot && (first(form.honeypot) ?? '').trim() !== '') {
    log.outcome = 'spam';
    log.status = answer.statusCode;
    return answer;
  }

  const { fields, replyTo } = validateFields(form, body);

  if (form.captcha) {
    const token = first(CAPTCHA_PROVIDERS[form.captcha.provider].field);
    const withCaptcha = { ...form, captcha: form.captcha };
    await verifyCaptcha(withCaptcha, token, event.requestContext.http.sourceIp, rt.secrets, deadline);
  }

  const valid = buildMessage(form, fields, body, replyTo, limits.maxBodyBytes);
  const result = await deliverValid(valid, rt.deps, { deadline, trace: log.trace, enforcePolicy: false });
  log.outcome = 'sent';
  log.messages = 1;
  // The public answer is the same as for a honeypot hit (no Message-ID): a bot cannot tell it was caught.
  log.status = answer.statusCode;
  rt.logger.debug('form message sent', { messageId: result.messageId });
  return answer;
}

/** C0 and C1 controls, space, DEL: never part of a URL as written (`new URL` would silently drop some). */
const URL_FORBIDDEN = /[\u0000-\u0020\u007f-\u009f]/u;

/**
 * Where a browser post is sent after success: `_next`/`redirect` when the allowlist covers it (no open redirect),
 * else the form's `redirect`. The `Location` is always the parsed URL's normalised `href`, never the raw string;
 * a target with control characters or white space is refused.
 */
function redirectTarget(form: FormConfig, first: (name: string) => string | undefined): string | undefined {
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

/** Field rules: required, maxLength, type email; CR/LF refused in fields that reach a header. */
function validateFields(
  form: FormConfig,
  body: FormBody,
): { fields: Array<[string, string]>; replyTo?: Mailbox } {
  const errors: FieldError[] = [];
  const rules = form.fields ?? {};
  const hidden = new Set<string>([...REDIRECT_FIELDS, ...CAPTCHA_FIELDS]);
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
function buildMessage(
  form: FormConfig,
  fields: Array<[string, string]>,
  body: FormBody,
  replyTo: Mailbox | undefined,
  maxHtmlBytes: number,
): ValidSendRequest {
  const files = acceptUploads(body.files, form.attachments); // the one upload policy (send/uploads.ts)
  const lookup = new Map(fields);
  const subject = form.subject
    .replace(/\{\{\s*([\w.-]+)\s*\}\}/gu, (_, name: string) => lookup.get(name) ?? '')
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
