/**
 * `POST /forms/{formId}` (public) and its `OPTIONS` preflight. The form's configuration fixes the recipients
 * (never the request: no open relay), the subject, the field rules, the honeypot, the allowed origins, the
 * redirect allowlist (no open redirect) and the CAPTCHA. CORS headers are on every response, errors included.
 */
import { type FormConfig, matchesRedirectAllowlist, templateFields } from '../config/endpoint.ts';
import { lineBreakIn, parseMailbox } from '../mime/index.ts';
import type { Mailbox } from '../mime/types.ts';
import { deadlineFrom, deliverValid } from '../send/deliver.ts';
import { type FieldError, SendError, validationFailed } from '../send/errors.ts';
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
import { errorPage, escapeHtml, thankYouPage } from './pages.ts';
import { type Runtime, requireConfig } from './runtime.ts';

const REDIRECT_FIELDS = ['_next', 'redirect'] as const;
const MAX_FIELDS = 100;

/** CORS headers for a form response: the request's Origin is echoed (with `Vary: Origin`). */
function corsHeaders(event: HttpEvent): Record<string, string> {
  const origin = header(event, 'origin');
  const h: Record<string, string> = { vary: 'Origin' };
  if (origin) h['access-control-allow-origin'] = origin;
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
  log.formId = formId;
  const cors = corsHeaders(event);
  const asJson = wantsJson(event);
  try {
    const config = requireConfig(rt);
    const form = config.forms?.[formId];
    if (!form || !Object.hasOwn(config.forms ?? {}, formId)) {
      throw new SendError('form_not_found', `there is no form "${formId}"`);
    }
    const origin = header(event, 'origin');
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
    const extra = err.code === 'method_not_allowed' ? { ...cors, allow: 'POST, OPTIONS' } : cors;
    if (asJson) return problem(err, extra, log.requestId, 'public');
    const h: Record<string, string> = { ...extra };
    if (err.transient && err.retryAfter !== undefined) h['retry-after'] = String(err.retryAfter);
    return errorPage(err.status, err.title, err.message, err.errors ?? [], h, err.code);
  }
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
  const limit = rt.limits.maxBodyBytes + maxFiles * maxFileBytes + 64 * 1024;
  const type = mediaType(event);
  if (!['application/x-www-form-urlencoded', 'multipart/form-data', 'application/json'].includes(type)) {
    throw new SendError(
      'unsupported_media_type',
      'forms take application/x-www-form-urlencoded, multipart/form-data or application/json',
      { errors: [{ field: 'content-type', code: 'unsupported', message: type || '(none)' }] },
    );
  }
  const bytes = bodyBytes(event, limit);
  const body = await parseFormBody(type, header(event, 'content-type') ?? '', bytes, {
    maxFields: MAX_FIELDS,
    maxFieldBytes: rt.limits.maxBodyBytes,
    maxFiles,
    maxFileBytes: Math.max(maxFileBytes, 1),
  });
  const first = (name: string) => body.fields.get(name)?.[0];

  // Redirect target: only from the allowlist (no open redirect).
  let target = form.redirect;
  for (const name of REDIRECT_FIELDS) {
    const requested = first(name);
    if (requested === undefined || requested === '') continue;
    if (!form.redirectAllowlist || !matchesRedirectAllowlist(requested, form.redirectAllowlist)) {
      throw validationFailed([
        {
          field: name,
          code: 'redirect_not_allowed',
          message: 'this redirect target is not in the allowlist',
        },
      ]);
    }
    target = requested;
    break;
  }

  const success = (): HttpResult => {
    if (asJson) return json(200, { ok: true }, cors);
    if (target) {
      return { statusCode: 303, headers: { ...cors, location: target }, body: '', isBase64Encoded: false };
    }
    return thankYouPage(cors);
  };

  // Honeypot: a bot filled the hidden field. Same answer as a success; nothing is sent.
  if (form.honeypot && (first(form.honeypot) ?? '').trim() !== '') {
    log.outcome = 'spam';
    log.status = asJson ? 200 : target ? 303 : 200;
    return success();
  }

  const { fields, replyTo } = validateFields(form, body);

  if (form.captcha) {
    const token = first(CAPTCHA_PROVIDERS[form.captcha.provider].field);
    await verifyCaptcha(form.captcha, token, event.requestContext.http.sourceIp, rt.secrets, deadline);
  }

  const valid = buildMessage(form, fields, body, replyTo);
  const result = await deliverValid(valid, rt.deps, { deadline, trace: log.trace, enforcePolicy: false });
  log.outcome = 'sent';
  log.messages = 1;
  // The public answer is the same as for a honeypot hit (no Message-ID): a bot cannot tell it was caught.
  const res = success();
  log.status = res.statusCode;
  rt.logger.debug('form message sent', { messageId: result.messageId });
  return res;
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

function buildMessage(
  form: FormConfig,
  fields: Array<[string, string]>,
  body: FormBody,
  replyTo: Mailbox | undefined,
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
  const rows = fields
    .map(
      ([name, value]) =>
        `<tr><th align="left" valign="top">${escapeHtml(label(name))}</th>` +
        `<td style="white-space:pre-wrap">${escapeHtml(value)}</td></tr>`,
    )
    .join('');
  const html = `<!doctype html><html><body><table cellpadding="4">${rows}</table></body></html>`;
  const addresses = (list: string[] | undefined) => (list ?? []).map((a) => parseMailbox(a));
  const valid: ValidSendRequest = {
    to: addresses(form.to),
    cc: addresses(form.cc),
    bcc: addresses(form.bcc),
    replyTo: replyTo ? [replyTo] : [],
    subject: shortSubject || 'Form submission',
    text,
    html,
    attachments: files,
    // A notification, not a person's mail: no out-of-office reply to whatever address a visitor typed.
    headers: { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' },
    // The visitor's address is in the body; as Reply-To it must not make the mail need SMTPUTF8.
    replyToOptional: true,
  };
  return valid;
}
