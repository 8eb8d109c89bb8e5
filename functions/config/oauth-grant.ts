/**
 * OAuth 2.0 grants for SMTP XOAUTH2, as configured in the SMTP secret's `auth` (type `oauth2`): which token URL,
 * which form fields. Pure: no I/O (oauth-token.ts posts the request).
 *
 * - `client_credentials` (Microsoft Entra ID v2.0, RFC 6749 §4.4): the app's own token for Exchange Online,
 *   scope `https://outlook.office365.com/.default`; token URL from `tenantId`.
 * - `jwt_bearer` (Google service account with domain-wide delegation, RFC 7523): an RS256 JWT signed with the
 *   service account's key, `sub` = the mailbox, scope `https://mail.google.com/`.
 * - `refresh_token` (any provider, RFC 6749 §6): a long-lived refresh token from a one-time consent.
 */
import type { KeyObject } from 'node:crypto';
import { isLoopback } from '../smtp/host.ts';

/** `node:crypto` at first use, not at import: it stays out of a cold start's init (docs/benchmarks.md). */
const crypto = () => process.getBuiltinModule('node:crypto');

export const MICROSOFT_SCOPE = 'https://outlook.office365.com/.default';
export const GOOGLE_SCOPE = 'https://mail.google.com/';
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Lifetime of the JWT assertion (Google allows at most one hour). */
const ASSERTION_SECONDS = 3600;

export function microsoftTokenUrl(tenantId: string): string {
  return `https://login.microsoftonline.com/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
}

export type OAuthGrant =
  | {
      grant: 'client_credentials';
      tokenUrl: string;
      clientId: string;
      clientSecret: string;
      scope: string;
    }
  | {
      grant: 'jwt_bearer';
      tokenUrl: string;
      clientEmail: string;
      privateKey: KeyObject;
      privateKeyId?: string;
      scope: string;
    }
  | {
      grant: 'refresh_token';
      tokenUrl: string;
      clientId: string;
      clientSecret?: string;
      refreshToken: string;
      scope?: string;
      /** Write a rotated refresh token back to the secret (PutSecretValue). */
      writeBack: boolean;
    };

/** `undefined` when `url` is an acceptable token endpoint: https, or http to a loopback address only. */
export function tokenUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'must be an https:// URL';
  }
  if (u.username || u.password) return 'must not carry credentials';
  if (u.protocol === 'https:') return undefined;
  // plain http only to a loopback host (tests, local development): the SMTP client's own loopback test
  if (u.protocol === 'http:' && isLoopback(u.hostname)) return undefined;
  return 'must be an https:// URL (plain http only to a loopback host)';
}

/** An RSA private key for RS256 (PEM). Throws a message naming no value. */
export function rs256Key(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = crypto().createPrivateKey(pem);
  } catch {
    throw new Error('is not a readable PEM private key');
  }
  if (key.asymmetricKeyType !== 'rsa') throw new Error('must be an RSA key (RS256)');
  return key;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** RFC 7523 assertion: header.claims.signature, RS256. `now` in epoch ms. */
export function jwtAssertion(
  g: Extract<OAuthGrant, { grant: 'jwt_bearer' }>,
  subject: string,
  now: number,
): string {
  const iat = Math.floor(now / 1000);
  const header = { alg: 'RS256', typ: 'JWT', ...(g.privateKeyId ? { kid: g.privateKeyId } : {}) };
  const claims = {
    iss: g.clientEmail,
    sub: subject,
    scope: g.scope,
    aud: g.tokenUrl,
    iat,
    exp: iat + ASSERTION_SECONDS,
  };
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${signingInput}.${b64url(crypto().sign('sha256', Buffer.from(signingInput), g.privateKey))}`;
}

/** The form fields of the token request (application/x-www-form-urlencoded). `subject`: the mailbox. */
export function tokenRequestBody(g: OAuthGrant, subject: string, now: number): URLSearchParams {
  const body = new URLSearchParams();
  switch (g.grant) {
    case 'client_credentials':
      body.set('grant_type', 'client_credentials');
      body.set('client_id', g.clientId);
      body.set('client_secret', g.clientSecret);
      body.set('scope', g.scope);
      break;
    case 'jwt_bearer':
      body.set('grant_type', JWT_BEARER);
      body.set('assertion', jwtAssertion(g, subject, now));
      break;
    case 'refresh_token':
      body.set('grant_type', 'refresh_token');
      body.set('refresh_token', g.refreshToken);
      body.set('client_id', g.clientId);
      if (g.clientSecret !== undefined) body.set('client_secret', g.clientSecret);
      if (g.scope !== undefined) body.set('scope', g.scope);
      break;
  }
  return body;
}
