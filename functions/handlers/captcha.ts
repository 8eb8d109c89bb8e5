/**
 * The CAPTCHA of a form: the providers' token fields (every form post leaves them out of the message), and the
 * check itself, whose code (captcha-verify.ts) is loaded at the first post to a form that has a CAPTCHA.
 */
import type { CaptchaConfig, FormConfig } from '../config/endpoint.ts';
import type { SecretStore } from '../config/secrets.ts';
import { atFirstUse, loadFailureName } from '../send/first-use.ts';
import { HttpError } from './failure.ts';

export const CAPTCHA_PROVIDERS = {
  turnstile: {
    field: 'cf-turnstile-response',
    verifyUrl: 'https://challenges.cloudflare.com/turnstile/v0/siteverify',
  },
  hcaptcha: { field: 'h-captcha-response', verifyUrl: 'https://api.hcaptcha.com/siteverify' },
  recaptcha: { field: 'g-recaptcha-response', verifyUrl: 'https://www.google.com/recaptcha/api/siteverify' },
} as const;

export const CAPTCHA_FIELDS: readonly string[] = Object.values(CAPTCHA_PROVIDERS).map((p) => p.field);

/** The check's code; a failed load is the CAPTCHA being unavailable (503, retried), as a provider outage is. */
const verification = atFirstUse(
  () => import('./captcha-verify.ts'),
  (e) =>
    new HttpError('captcha_unavailable', `the CAPTCHA cannot be verified right now (${loadFailureName(e)})`, {
      retryAfter: 10,
    }),
);

/**
 * Verify a form's CAPTCHA token (captcha-verify.ts `verifyToken`): missing, refused, or solved for another host
 * or action → `captcha_failed`; the provider or the secret unreachable → `captcha_unavailable`.
 */
export async function verifyCaptcha(
  form: FormConfig & { captcha: CaptchaConfig },
  token: string | undefined,
  remoteIp: string | undefined,
  secrets: SecretStore,
  deadline: number,
): Promise<void> {
  if (!token) {
    const { field } = CAPTCHA_PROVIDERS[form.captcha.provider];
    throw new HttpError('captcha_failed', `the CAPTCHA response (${field}) is missing`, {
      status: 400,
      errors: [{ field, code: 'required', message: 'complete the CAPTCHA' }],
    });
  }
  const { verifyToken } = await verification();
  return verifyToken(form, token, remoteIp, secrets, deadline);
}
