/**
 * One token request: POST the grant's form to the token endpoint (RFC 6749 §3.2), read a bounded JSON answer,
 * and turn it into an access token with its expiry, or into a `SendError`: a refusal (`invalid_client`,
 * `unauthorized_client`, `invalid_grant`…) is `configuration_error` with a provider hint; a network failure, a
 * timeout or a 5xx is `smtp_unavailable` (transient). Neither the request nor the answer is ever logged.
 */
import * as v from 'valibot';
import { SendError } from '../send/errors.ts';
import { tokenEndpointHint } from '../send/provider-hints.ts';
import { type OAuthGrant, tokenRequestBody, tokenUrlProblem } from './oauth-grant.ts';

export interface AccessToken {
  accessToken: string;
  /** Epoch ms at which the provider says the token expires. */
  expiresAt: number;
  /** A new refresh token, when the provider rotated it (refresh_token grant). */
  refreshToken?: string;
}

export interface TokenRequestOptions {
  /** Per-request time limit. Default 5 s. */
  timeoutMs?: number;
  now?: () => number;
  fetch?: typeof fetch;
}

/** Token answers are a few KiB; anything bigger is not a token endpoint. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** When the answer has no `expires_in` (it is RECOMMENDED, not required). */
const DEFAULT_LIFETIME_S = 3600;

const Success = v.object({
  access_token: v.pipe(v.string(), v.regex(/^[\x21-\x7e]+$/u)),
  token_type: v.optional(v.string()),
  expires_in: v.optional(v.union([v.number(), v.pipe(v.string(), v.regex(/^\d+$/u), v.transform(Number))])),
  refresh_token: v.optional(v.string()),
});
const Refusal = v.object({ error: v.string(), error_description: v.optional(v.string()) });

async function readBounded(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_ANSWER_BYTES) {
      await reader.cancel();
      throw new Error('answer too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const unavailable = (why: string, cause?: unknown) =>
  new SendError('smtp_unavailable', `the OAuth token endpoint is unavailable (${why}); try again later`, {
    retryAfter: 10,
    ...(cause === undefined ? {} : { cause }),
  });

/** Request an access token for `subject` (the mailbox). Throws `SendError`. */
export async function requestToken(
  grant: OAuthGrant,
  subject: string,
  opts: TokenRequestOptions = {},
): Promise<AccessToken> {
  const problem = tokenUrlProblem(grant.tokenUrl);
  if (problem) throw new SendError('configuration_error', `auth.tokenUrl ${problem}`);
  const now = opts.now ?? Date.now;
  const started = now();
  let res: Response;
  let text: string;
  try {
    res = await (opts.fetch ?? fetch)(grant.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: tokenRequestBody(grant, subject, started),
      redirect: 'error',
      signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
    });
    text = await readBounded(res);
  } catch (e) {
    const name = (e as Error)?.name === 'TimeoutError' ? 'timeout' : 'network error';
    throw unavailable(name, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (res.ok) {
    const ok = v.safeParse(Success, json);
    if (!ok.success) throw unavailable(`HTTP ${res.status} without a usable access_token`);
    const lifetime = ok.output.expires_in ?? DEFAULT_LIFETIME_S;
    const token: AccessToken = { accessToken: ok.output.access_token, expiresAt: started + lifetime * 1000 };
    if (ok.output.refresh_token) token.refreshToken = ok.output.refresh_token;
    return token;
  }
  const refusal = v.safeParse(Refusal, json);
  if (res.status >= 500 || res.status === 429 || !refusal.success) throw unavailable(`HTTP ${res.status}`);
  throw refused(grant, res.status, refusal.output.error, refusal.output.error_description);
}

function refused(grant: OAuthGrant, status: number, error: string, description = ''): SendError {
  const safeError = /^[\x20-\x7e]{1,64}$/u.test(error) ? error : 'error';
  const aadsts = /AADSTS\d+/.exec(description)?.[0];
  const hint = tokenEndpointHint(error, description);
  return new SendError(
    'configuration_error',
    `the OAuth token endpoint refused the ${grant.grant} grant (HTTP ${status}: ${safeError}` +
      `${aadsts ? ` ${aadsts}` : ''})`,
    hint ? { hint } : {},
  );
}
