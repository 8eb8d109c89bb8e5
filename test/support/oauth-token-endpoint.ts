/**
 * A local OAuth 2.0 token endpoint (plain http on 127.0.0.1, ephemeral port) answering in the exact JSON shapes of
 * Microsoft Entra ID v2.0 and Google's token endpoint, refusals included, and counting its calls.
 *
 * - `POST /{tenant}/oauth2/v2.0/token` (Entra): `client_credentials` (client_id + client_secret, scope must be
 *   `https://outlook.office365.com/.default`) and `refresh_token`. A wrong secret gets Entra's 401
 *   `invalid_client` with `AADSTS7000215` and its `error_codes`/`trace_id`/`correlation_id` fields.
 * - `POST /token` (Google): the `jwt-bearer` grant, the JWT verified with the service account's PUBLIC key (RS256,
 *   iss, aud = this URL, iat/exp, scope, sub); a service account without delegation gets Google's 401
 *   `unauthorized_client`; a bad signature `invalid_grant` "Invalid JWT Signature.". Also `refresh_token`.
 *
 * Every issued token is remembered with its subject so an SMTP peer can check the token it was given
 * (`isValid(token, user)`). `hold()` keeps answers back until released (concurrent first calls).
 */
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServiceAccount {
  publicKey: string;
  /** Domain-wide delegation granted for https://mail.google.com/ (default true). */
  delegated?: boolean;
}

export interface RefreshTokenGrant {
  clientId: string;
  clientSecret?: string;
  subject: string;
  /** Answer with a new refresh_token (and invalidate this one), as Entra does. */
  rotate?: boolean;
}

export interface TokenEndpointOptions {
  /** Entra apps: client_id → client_secret. */
  clients?: Record<string, string>;
  /** Entra apps whose client secret has expired (answered AADSTS7000222). */
  expiredClients?: string[];
  /** Entra tenants that exist (default: any); others are answered AADSTS90002. */
  tenants?: string[];
  /** Mailbox the Entra app's tokens are good for (client_credentials has no user: any mailbox it may use). */
  appMailboxes?: string[];
  /** Google service accounts by client_email. */
  serviceAccounts?: Record<string, ServiceAccount>;
  refreshTokens?: Record<string, RefreshTokenGrant>;
  /** `expires_in` of issued tokens, seconds. Default 3599 (what both providers say). */
  expiresIn?: number;
}

export interface TokenCall {
  path: string;
  grantType: string;
  params: Record<string, string>;
  status: number;
  /** The decoded JWT claims of a jwt-bearer request. */
  claims?: Record<string, unknown>;
}

export interface TokenEndpoint {
  url: string;
  /** `${url}/${tenant}/oauth2/v2.0/token` */
  entraUrl(tenant: string): string;
  /** `${url}/token` */
  googleUrl: string;
  calls: TokenCall[];
  /** Issued access tokens → the subject they are good for ('*' for app tokens). */
  issued: Map<string, string>;
  isValid(token: string | undefined, user: string): boolean;
  /** Revoke every token issued so far (the SMTP peer then refuses them). */
  revokeAll(): void;
  /** Keep answers back until `release()` is called. */
  hold(): void;
  release(): void;
  options: TokenEndpointOptions;
  close(): Promise<void>;
}

const MICROSOFT_SCOPE = 'https://outlook.office365.com/.default';
const GOOGLE_SCOPE = 'https://mail.google.com/';
const id = () => randomBytes(16).toString('hex');
const uuid = () => {
  const h = id();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

/** Entra ID v2.0's error body (https://learn.microsoft.com/entra/identity-platform/reference-error-codes). */
function entraError(error: string, code: number, text: string) {
  const trace = uuid();
  const correlation = uuid();
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  return {
    error,
    error_description: `AADSTS${code}: ${text} Trace ID: ${trace} Correlation ID: ${correlation} Timestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: trace,
    correlation_id: correlation,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
  };
}

export async function startTokenEndpoint(options: TokenEndpointOptions = {}): Promise<TokenEndpoint> {
  const calls: TokenCall[] = [];
  const issued = new Map<string, string>();
  let held: Array<() => void> | undefined;
  const expiresIn = () => options.expiresIn ?? 3599;
  let base = '';

  const issue = (subject: string, prefix: string) => {
    const token = `${prefix}.${id()}`;
    issued.set(token, subject);
    return token;
  };

  function entra(params: Record<string, string>, tenant: string): [number, object] {
    const grant = params.grant_type;
    if (options.tenants && !options.tenants.includes(tenant)) {
      return [
        400,
        entraError(
          'invalid_request',
          90002,
          `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
        ),
      ];
    }
    if (grant === 'client_credentials') {
      const secret = options.clients?.[params.client_id ?? ''];
      if (secret === undefined) {
        return [
          400,
          entraError(
            'unauthorized_client',
            700016,
            `Application with identifier '${params.client_id}' was not found in the directory 'contoso'.`,
          ),
        ];
      }
      if (options.expiredClients?.includes(params.client_id ?? '')) {
        return [
          401,
          entraError(
            'invalid_client',
            7000222,
            `The provided client secret keys for app '${params.client_id}' are expired. Visit the Azure portal to create new keys for your app.`,
          ),
        ];
      }
      if (secret !== params.client_secret) {
        return [
          401,
          entraError(
            'invalid_client',
            7000215,
            'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.',
          ),
        ];
      }
      if (params.scope !== MICROSOFT_SCOPE) {
        return [
          400,
          entraError(
            'invalid_scope',
            1002012,
            `The provided value for scope ${params.scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
          ),
        ];
      }
      // Entra ID v2.0 client_credentials success: no refresh_token, no scope.
      return [
        200,
        {
          token_type: 'Bearer',
          expires_in: expiresIn(),
          ext_expires_in: expiresIn(),
          access_token: issue('*', 'eyJ0eXAiOiJKV1Qi'),
        },
      ];
    }
    if (grant === 'refresh_token') return refresh(params, true);
    return [400, entraError('unsupported_grant_type', 70003, 'The app requested an unsupported grant type.')];
  }

  function refresh(params: Record<string, string>, isEntra: boolean): [number, object] {
    const rt = options.refreshTokens?.[params.refresh_token ?? ''];
    const clientOk =
      rt &&
      rt.clientId === params.client_id &&
      (rt.clientSecret === undefined || rt.clientSecret === params.client_secret);
    if (!rt || !clientOk) {
      return isEntra
        ? [
            400,
            entraError(
              'invalid_grant',
              70000,
              "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid.",
            ),
          ]
        : [400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' }];
    }
    const body: Record<string, unknown> = isEntra
      ? {
          token_type: 'Bearer',
          scope: 'https://outlook.office365.com/SMTP.Send',
          expires_in: expiresIn(),
          ext_expires_in: expiresIn(),
          access_token: issue(rt.subject, 'eyJ0eXAiOiJKV1Qi'),
        }
      : {
          access_token: issue(rt.subject, 'ya29'),
          expires_in: expiresIn(),
          scope: GOOGLE_SCOPE,
          token_type: 'Bearer',
        };
    if (rt.rotate) {
      const next = `rt.${id()}`;
      delete options.refreshTokens![params.refresh_token!];
      options.refreshTokens![next] = rt;
      body.refresh_token = next;
    }
    return [200, body];
  }

  function google(params: Record<string, string>, call: TokenCall): [number, object] {
    if (params.grant_type === 'refresh_token') return refresh(params, false);
    if (params.grant_type !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      return [
        400,
        { error: 'unsupported_grant_type', error_description: 'Invalid grant_type: ' + params.grant_type },
      ];
    }
    const parts = (params.assertion ?? '').split('.');
    if (parts.length !== 3)
      return [
        400,
        {
          error: 'invalid_grant',
          error_description:
            'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
        },
      ];
    const [h, c, s] = parts as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString());
    const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, unknown>;
    call.claims = claims;
    const account = options.serviceAccounts?.[String(claims.iss)];
    if (!account)
      return [400, { error: 'invalid_grant', error_description: 'Invalid grant: account not found' }];
    const good =
      header.alg === 'RS256' &&
      verify(
        'sha256',
        Buffer.from(`${h}.${c}`),
        createPublicKey(account.publicKey),
        Buffer.from(s, 'base64url'),
      );
    if (!good) return [400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }];
    const now = Math.floor(Date.now() / 1000);
    const iat = Number(claims.iat);
    const exp = Number(claims.exp);
    if (claims.aud !== `${base}/token` || !(iat <= now + 60 && exp > now && exp - iat <= 3600)) {
      return [
        400,
        {
          error: 'invalid_grant',
          error_description:
            'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
        },
      ];
    }
    if (account.delegated === false || claims.scope !== GOOGLE_SCOPE || typeof claims.sub !== 'string') {
      return [
        401,
        {
          error: 'unauthorized_client',
          error_description:
            'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.',
        },
      ];
    }
    return [200, { access_token: issue(claims.sub, 'ya29'), expires_in: expiresIn(), token_type: 'Bearer' }];
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
      const path = req.url ?? '/';
      const call: TokenCall = { path, grantType: params.grant_type ?? '', params, status: 0 };
      calls.push(call);
      let answer: [number, object];
      if (
        req.method !== 'POST' ||
        !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')
      ) {
        answer = [
          400,
          { error: 'invalid_request', error_description: 'POST application/x-www-form-urlencoded expected' },
        ];
      } else if (/^\/[^/]+\/oauth2\/v2\.0\/token$/.test(path)) answer = entra(params, path.split('/')[1]!);
      else if (path === '/token') answer = google(params, call);
      else answer = [404, { error: 'not_found' }];
      call.status = answer[0];
      const send = () => {
        res.writeHead(answer[0], {
          'content-type': 'application/json; charset=utf-8',
          'cache-control': 'no-store',
        });
        res.end(JSON.stringify(answer[1]));
      };
      if (held) held.push(send);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    entraUrl: (tenant) => `${base}/${tenant}/oauth2/v2.0/token`,
    googleUrl: `${base}/token`,
    calls,
    issued,
    options,
    isValid: (token, user) => {
      const subject = token === undefined ? undefined : issued.get(token);
      if (subject === undefined) return false;
      return subject === user || (subject === '*' && (options.appMailboxes ?? []).includes(user));
    },
    revokeAll: () => issued.clear(),
    hold: () => {
      held ??= [];
    },
    release: () => {
      const list = held ?? [];
      held = undefined;
      for (const send of list) send();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** smtp-server `onAuth` for XOAUTH2 that checks the token with the endpoint (refusal: 334 challenge, then 535). */
export function xoauth2OnAuth(endpoint: TokenEndpoint, seen: Array<{ user: string; token: string }> = []) {
  return (
    auth: { method: string; username?: string; accessToken?: string },
    _session: unknown,
    cb: (err: Error | null | undefined, response?: { user?: string; data?: object }) => void,
  ) => {
    if (auth.method !== 'XOAUTH2')
      return cb(Object.assign(new Error('5.7.8 use XOAUTH2'), { responseCode: 535 }));
    seen.push({ user: auth.username ?? '', token: auth.accessToken ?? '' });
    if (endpoint.isValid(auth.accessToken, auth.username ?? '')) return cb(null, { user: auth.username! });
    cb(null, { data: { status: '401', schemes: 'bearer', scope: GOOGLE_SCOPE } });
  };
}
