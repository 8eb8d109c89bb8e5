/**
 * SASL mechanisms for SMTP AUTH (RFC 4954): PLAIN with initial response (RFC 4616), LOGIN
 * (draft-murchison-sasl-login) and XOAUTH2 (Google/Microsoft, caller supplies the token).
 * Produces base64 payloads only; `command.ts` wraps them into lines.
 */
import { assertNoLineBreak } from './command.ts';
import { SmtpError } from './error.ts';
import type { AuthMechanism, Credentials } from './types.ts';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

function assertField(value: string, what: string): void {
  assertNoLineBreak(value, what, 'auth');
}

/** PLAIN: base64(authzid NUL authcid NUL passwd), authzid empty. */
export function plainInitialResponse(username: string, password: string): string {
  assertField(username, 'username');
  assertField(password, 'password');
  return b64(`\0${username}\0${password}`);
}

/** LOGIN: the two answers, username then password. */
export function loginResponses(username: string, password: string): [string, string] {
  assertField(username, 'username');
  assertField(password, 'password');
  return [b64(username), b64(password)];
}

/** XOAUTH2: base64("user=" user ^A "auth=Bearer " token ^A ^A). */
export function xoauth2InitialResponse(username: string, accessToken: string): string {
  assertField(username, 'username');
  assertField(accessToken, 'access token');
  if (/[\x01\s]/.test(accessToken)) {
    throw new SmtpError('access token contains whitespace or control characters', {
      phase: 'auth',
      kind: 'usage',
    });
  }
  return b64(`user=${username}\x01auth=Bearer ${accessToken}\x01\x01`);
}

/**
 * Pick the mechanism: the caller's choice if the server offers it; else XOAUTH2 for a token, else PLAIN > LOGIN.
 * Throws `SmtpError` (phase auth) when nothing usable is offered.
 */
export function chooseMechanism(creds: Credentials, offered: string[]): AuthMechanism {
  const has = (m: string) => offered.includes(m);
  if (creds.mechanism) {
    if (!has(creds.mechanism)) {
      throw new SmtpError(
        `server does not offer AUTH ${creds.mechanism} (offers: ${offered.join(' ') || 'none'})`,
        {
          phase: 'auth',
          kind: 'security',
        },
      );
    }
    return creds.mechanism;
  }
  if ('accessToken' in creds) {
    if (has('XOAUTH2')) return 'XOAUTH2';
  } else {
    if (has('PLAIN')) return 'PLAIN';
    if (has('LOGIN')) return 'LOGIN';
  }
  throw new SmtpError(`no usable AUTH mechanism (server offers: ${offered.join(' ') || 'none'})`, {
    phase: 'auth',
    kind: 'security',
  });
}
