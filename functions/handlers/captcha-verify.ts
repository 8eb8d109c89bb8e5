/**
 * CAPTCHA verification (Cloudflare Turnstile, hCaptcha, Google reCAPTCHA): all three take a form POST of
 * `secret`, `response` (and `remoteip`) and answer `{ "success": bool, "error-codes": [...] }`.
 * The secret comes from Secrets Manager (`captcha.secretId`): a plain string or JSON `{ "secret": "…" }`.
 * Loaded at the first post to a form with a CAPTCHA (captcha.ts), not at init.
 */
// First the instance's code, as every chunk loaded at first use does (why: handlers/store-chunk.ts).
import './instance.ts';
import type { CaptchaConfig, FormConfig } from '../config/endpoint.ts';
import { SecretError, type SecretStore } from '../config/secrets.ts';
import { SendError } from '../send/errors.ts';
import { CAPTCHA_PROVIDERS } from './captcha.ts';
import { HttpError } from './failure.ts';

export function captchaSecretFrom(value: string): string {
  const trimmed = value.trim();
  if (trimmed.startsWith('{')) {
    try {
      const o = JSON.parse(trimmed) as Record<string, unknown>;
      for (const k of ['secret', 'secretKey', 'secret_key'])
        if (typeof o[k] === 'string') return o[k] as string;
    } catch {
      // fall through: a plain secret that happens to start with "{"
    }
  }
  return trimmed;
}

/**
 * Where a token may come from: `captcha.hostnames`, else the hosts of the form's `allowedOrigins` (`*` and `null`
 * name no host). Empty: any host (a form open to every origin).
 */
export function expectedHostnames(form: FormConfig & { captcha: CaptchaConfig }): string[] {
  if (form.captcha.hostnames) return form.captcha.hostnames;
  const hosts = (form.allowedOrigins ?? []).flatMap((o) => {
    try {
      return o === '*' || o === 'null' ? [] : [new URL(o).hostname];
    } catch {
      return [];
    }
  });
  return [...new Set(hosts)];
}

/**
 * Verify a token with the provider: it must say `success`, for one of the form's host names and (when configured) its
 * action — a token solved on another site, or for another widget, is refused like a forged one.
 */
export async function verifyToken(
  form: FormConfig & { captcha: CaptchaConfig },
  token: string,
  remoteIp: string | undefined,
  secrets: SecretStore,
  deadline: number,
): Promise<void> {
  const config = form.captcha;
  const provider = CAPTCHA_PROVIDERS[config.provider];
  const secret = captchaSecretFrom(await captchaSecret(secrets, config.secretId));
  const request = new URLSearchParams({ secret, response: token });
  if (remoteIp) request.set('remoteip', remoteIp);
  const timeout = Math.max(500, Math.min(5000, deadline - Date.now()));
  let answer: { success?: unknown; 'error-codes'?: unknown; hostname?: unknown; action?: unknown };
  try {
    const res = await fetch(config.verifyUrl ?? provider.verifyUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: request,
      signal: AbortSignal.timeout(timeout),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    answer = (await res.json()) as typeof answer;
  } catch {
    throw new HttpError('captcha_unavailable', 'the CAPTCHA service could not be reached; try again', {
      retryAfter: 10,
    });
  }
  const hostnames = expectedHostnames(form);
  const codes = Array.isArray(answer['error-codes']) ? answer['error-codes'].map(String).slice(0, 5) : [];
  if (answer.success === true && hostnames.length > 0 && !hostnames.includes(String(answer.hostname ?? ''))) {
    codes.push('hostname-mismatch');
  }
  if (answer.success === true && config.action !== undefined && answer.action !== config.action) {
    codes.push('action-mismatch');
  }
  if (answer.success !== true || codes.length > 0) {
    throw new HttpError(
      'captcha_failed',
      `the CAPTCHA was not accepted${codes.length ? ` (${codes.map((c) => c.slice(0, 40)).join(', ')})` : ''}`,
      {
        status: 403,
        errors: [{ field: provider.field, code: 'captcha_failed', message: 'the CAPTCHA was not accepted' }],
      },
    );
  }
}

/**
 * The CAPTCHA secret, the store's failure named for what it stops: a Secrets Manager outage makes CAPTCHA
 * verification unavailable (503, retried later), never "the mail server is unavailable"; a secret that cannot be
 * read at all is the deployment's configuration error (its detail logged, not shown on a form).
 */
async function captchaSecret(secrets: SecretStore, id: string): Promise<string> {
  try {
    return (await secrets.get(id)).value;
  } catch (e) {
    if (!(e instanceof SecretError)) throw e;
    if (e.transient) {
      throw new HttpError(
        'captcha_unavailable',
        'the CAPTCHA cannot be verified right now; try again later',
        {
          retryAfter: e.retryAfter,
        },
      );
    }
    throw new SendError('configuration_error', `the CAPTCHA secret: ${e.message}`, { cause: e });
  }
}
