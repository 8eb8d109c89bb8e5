/**
 * `POST /forms/{formId}` (public) and its `OPTIONS` preflight. The form's configuration fixes the recipients
 * (never the request: no open relay), the subject, the field rules, the honeypot, the allowed origins, the
 * redirect allowlist (no open redirect) and the CAPTCHA. CORS headers are on every response, errors included.
 */
import type { FormConfig } from '../config/endpoint.ts';
import { deadlineFrom } from '../send/deliver.ts';
import { SendError } from '../send/errors.ts';
import { formMessage, isSpam, redirectTarget, validateFields } from '../send/form.ts';
import { DEFAULT_FORM_DEDUPE_SECONDS, deliverValidOnce, formSubmissionKey } from '../send/idempotency.ts';
import { CAPTCHA_FIELDS, CAPTCHA_PROVIDERS, verifyCaptcha } from './captcha.ts';
import { corsHeaders, originAllowed } from './cors.ts';
import { asFailed, type Failed, type FailureCode, HttpError, statusOf } from './failure.ts';
import { parseFormBody } from './form-body.ts';
import { type HttpRequest, type HttpResult, json, problem } from './http.ts';
import { type Answered, failureOutcome, type Invocation, type InvocationOutcome } from './log.ts';
import { errorPage, thankYouPage } from './pages.ts';
import { type Runtime, requireConfig } from './runtime.ts';

/** `node:crypto` at first use, not at import: it stays out of a cold start's init (docs/benchmarks.md). */
const crypto = () => process.getBuiltinModule('node:crypto');

/** Boundaries and part headers of a multipart body, on top of its fields and files. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/** Browser navigation (HTML answers, 303 redirects) or a script (JSON answers)? */
function wantsJson(request: HttpRequest): boolean {
  const { accept } = request;
  const mode = (request.headers['sec-fetch-mode'] ?? '').toLowerCase();
  if (mode === 'cors' || mode === 'same-origin' || mode === 'no-cors') return true;
  if (mode === 'navigate') return false;
  if (accept.includes('application/json') || accept.includes('application/problem+json')) return true;
  if (accept.includes('text/html')) return false;
  return request.mediaType === 'application/json' || accept === '';
}

export async function handleForm(
  request: HttpRequest,
  formId: string,
  inv: Invocation,
): Promise<Answered<HttpResult>> {
  const { rt } = inv;
  const { method, origin } = request;
  const base: InvocationOutcome = { entryPoint: 'http_form', formId: formId.slice(0, 64) };
  const asJson = wantsJson(request);
  let cors = corsHeaders(undefined, undefined, origin);
  try {
    const config = requireConfig(rt);
    const form = Object.hasOwn(config.forms ?? {}, formId) ? config.forms?.[formId] : undefined;
    cors = corsHeaders(config, form, origin);
    if (!form) {
      throw new HttpError('form_not_found', `there is no form "${formId.slice(0, 64)}"`);
    }
    if (!originAllowed(form, origin)) {
      throw new HttpError('origin_not_allowed', 'this origin may not submit this form', {
        errors: [
          { field: 'origin', code: 'origin_not_allowed', message: 'not in the form’s allowedOrigins' },
        ],
      });
    }
    if (method === 'OPTIONS') {
      return { response: preflight(cors), outcome: { ...base, outcome: 'preflight', status: 204 } };
    }
    if (method !== 'POST') {
      throw new HttpError('method_not_allowed', `${method} is not allowed here; use POST`);
    }
    const done = await submit(request, formId, form, inv, cors, asJson);
    return { response: done.response, outcome: { ...base, ...done.outcome } };
  } catch (e) {
    const err = asFailed(e);
    if (err.code === 'internal_error') rt.logger.error('form handler failed', { error: e as Error });
    const response = failureAnswer(err, cors, asJson, inv);
    return { response, outcome: { ...base, ...failureOutcome(err) } };
  }
}

/** The CORS preflight's answer (the origin was checked). */
function preflight(cors: Record<string, string>): HttpResult {
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

/** A failure as a form answers it: a problem (script) or a page (browser), with the public detail only. */
function failureAnswer(
  err: Failed,
  cors: Record<string, string>,
  asJson: boolean,
  inv: Invocation,
): HttpResult {
  const shown = publicError(err);
  if (shown !== err && err.code !== 'internal_error') {
    inv.rt.logger.error('form request failed', { code: err.code, detail: err.message });
  }
  const extra = err.code === 'method_not_allowed' ? { ...cors, allow: 'POST, OPTIONS' } : cors;
  if (asJson) return problem(shown, extra, inv.requestId, 'public');
  const h: Record<string, string> = { ...extra };
  if (shown.transient && shown.retryAfter !== undefined) h['retry-after'] = String(shown.retryAfter);
  return errorPage(statusOf(shown), shown.title, shown.message, shown.errors ?? [], h, shown.code);
}

/** What a public (form) answer may say about a failure of the deployment itself: its code, nothing of its detail. */
const PUBLIC_DETAIL: Partial<Record<FailureCode, string>> = {
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
function publicError(err: Failed): Failed {
  const detail = PUBLIC_DETAIL[err.code];
  if (detail === undefined || !(err instanceof SendError)) return err;
  return new SendError(err.code, detail, err.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {});
}

/** The post's body, decoded once within the form's bounds (the file allowance is for multipart files only). */
async function decodeFormBody(request: HttpRequest, form: FormConfig, limits: Runtime['limits']) {
  const maxFiles = form.attachments?.maxFiles ?? 0;
  const maxFileBytes = form.attachments?.maxFileBytes ?? 0;
  const type = request.mediaType;
  if (!['application/x-www-form-urlencoded', 'multipart/form-data', 'application/json'].includes(type)) {
    throw new HttpError(
      'unsupported_media_type',
      'forms take application/x-www-form-urlencoded, multipart/form-data or application/json',
      { errors: [{ field: 'content-type', code: 'unsupported', message: type.slice(0, 64) || '(none)' }] },
    );
  }
  // The file allowance is for files only: an urlencoded or JSON body is bounded by maxBodyBytes alone.
  const limit =
    type === 'multipart/form-data'
      ? limits.maxBodyBytes + maxFiles * maxFileBytes + MULTIPART_OVERHEAD_BYTES
      : limits.maxBodyBytes;
  const bytes = request.body.bytes(limit);
  return parseFormBody(type, request.contentType, bytes, {
    maxFields: limits.maxFormFields,
    maxFieldNameChars: limits.maxFieldNameChars,
    maxFieldBytes: limits.maxBodyBytes,
    maxFiles,
    maxFileBytes: Math.max(maxFileBytes, 1),
  });
}

async function submit(
  request: HttpRequest,
  formId: string,
  form: FormConfig,
  inv: Invocation,
  cors: Record<string, string>,
  asJson: boolean,
): Promise<Answered<HttpResult>> {
  const { rt } = inv;
  const deadline = deadlineFrom(inv.remainingMs());
  const { limits } = rt;
  const body = await decodeFormBody(request, form, limits);
  const first = (name: string) => body.fields.get(name)?.[0];

  // The answer is decided before anything is sent: no error can follow a delivered message.
  const target = redirectTarget(form, first);
  const success = (status: 'sent' | 'queued', messageId: string): HttpResult => {
    if (asJson) return json(status === 'sent' ? 200 : 202, { ok: true, status, messageId }, cors);
    if (target) {
      return { statusCode: 303, headers: { ...cors, location: target }, body: '', isBase64Encoded: false };
    }
    return thankYouPage(cors);
  };

  if (isSpam(form, body)) {
    // A honeypot hit gets the same answer with a decoy Message-ID: a bot cannot tell it was caught.
    const answer = success('sent', decoyMessageId((await rt.deps.smtp.get()).from));
    return { response: answer, outcome: { outcome: 'spam', status: answer.statusCode } };
  }

  const fields = validateFields(form, body, CAPTCHA_FIELDS);
  if (form.captcha) {
    const token = first(CAPTCHA_PROVIDERS[form.captcha.provider].field);
    const withCaptcha = { ...form, captcha: form.captcha };
    await verifyCaptcha(withCaptcha, token, request.sourceIp, rt.secrets, deadline);
  }

  const valid = formMessage(form, fields, body, limits.maxBodyBytes);
  // A double submit or a reload within the window answers as the first did and sends nothing; a repeat that
  // arrives while the first is still sending waits for it.
  const key = formSubmissionKey(
    formId,
    fields.fields,
    body.files,
    form.dedupeWindowSeconds ?? DEFAULT_FORM_DEDUPE_SECONDS,
  );
  const result = await deliverValidOnce(valid, key.value, rt.deps, rt.idempotency, {
    deadline,
    trace: inv.trace,
    enforcePolicy: false,
    mode: form.delivery ?? rt.delivery.forms,
    syncBudgetMs: rt.delivery.syncBudgetMs,
    origin: 'http_form',
    formId,
    key,
    waitWhileInProgress: true,
  });
  const res = success(result.status, result.messageId);
  rt.logger.debug(`form message ${result.status}`, { messageId: result.messageId });
  const outcome: InvocationOutcome = { outcome: result.status, messages: 1, status: res.statusCode };
  if (result.replayed) outcome.replayed = true;
  if (result.status === 'sent' && result.deferred?.length) outcome.code = 'recipient_deferred';
  return { response: res, outcome };
}

/** A Message-ID shaped like the ones `compose` writes (32 hex digits at the sender's domain), for a honeypot hit. */
function decoyMessageId(from: string): string {
  return `<${crypto().randomBytes(16).toString('hex')}@${from.slice(from.lastIndexOf('@') + 1)}>`;
}
