/**
 * XOAUTH2 credentials from an OAuth grant: one access token per secret version (one `OAuthTokenSource` per parsed
 * secret), cached until 5 minutes before it expires, fetched once for concurrent callers (single flight), and
 * fetched again on demand after the SMTP server refused it (535). A refresh token the provider rotated replaces
 * the old one in memory and, when the secret asks for it (`auth.writeBack`), is written back to the secret.
 */
import { SendError } from '../send/errors.ts';
import type { OAuthGrant } from './oauth-grant.ts';
import { type AccessToken, requestToken, type TokenRequestOptions } from './oauth-token.ts';

/** A token is not used in its last 5 minutes (it could expire between AUTH and a reconnect). */
export const TOKEN_EXPIRY_MARGIN_MS = 5 * 60_000;

export interface TokenSourceOptions extends TokenRequestOptions {
  /** Stores a rotated refresh token (PutSecretValue); only called when the grant has `writeBack`. */
  writeBack?: (refreshToken: string) => Promise<void>;
}

export interface IssuedToken {
  accessToken: string;
  /** Increments with every token fetched: a new serial means a new SMTP session. */
  serial: number;
}

export class OAuthTokenSource {
  #grant: OAuthGrant;
  readonly #subject: string;
  readonly #opts: TokenSourceOptions;
  #token: (AccessToken & { serial: number }) | undefined;
  #inflight: Promise<IssuedToken> | undefined;
  #pendingWriteBack: string | undefined;
  /** Token requests made (observability, tests). */
  requests = 0;

  constructor(grant: OAuthGrant, subject: string, opts: TokenSourceOptions = {}) {
    this.#grant = grant;
    this.#subject = subject;
    this.#opts = opts;
  }

  get grant(): OAuthGrant {
    return this.#grant;
  }

  /** The cached token while it has more than 5 minutes left; else one request shared by concurrent callers. */
  async get(): Promise<IssuedToken> {
    await this.#writeBackPending();
    const now = (this.#opts.now ?? Date.now)();
    const t = this.#token;
    if (t && now < t.expiresAt - TOKEN_EXPIRY_MARGIN_MS)
      return { accessToken: t.accessToken, serial: t.serial };
    return this.#fetch();
  }

  /** A new token now, whatever the cache holds (the server refused the last one); joins a request in flight. */
  refresh(): Promise<IssuedToken> {
    this.#token = undefined;
    return this.#fetch();
  }

  #fetch(): Promise<IssuedToken> {
    this.#inflight ??= this.#request().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #request(): Promise<IssuedToken> {
    const serial = ++this.requests;
    const token = await requestToken(this.#grant, this.#subject, this.#opts);
    this.#token = { ...token, serial };
    const g = this.#grant;
    if (g.grant === 'refresh_token' && token.refreshToken && token.refreshToken !== g.refreshToken) {
      this.#grant = { ...g, refreshToken: token.refreshToken };
      if (g.writeBack) {
        this.#pendingWriteBack = token.refreshToken;
        await this.#writeBackPending();
      }
    }
    return { accessToken: token.accessToken, serial };
  }

  /** Fail closed: until the rotated refresh token is stored, every call tries again and fails if it cannot. */
  async #writeBackPending(): Promise<void> {
    const rt = this.#pendingWriteBack;
    if (rt === undefined) return;
    if (!this.#opts.writeBack) {
      throw new SendError(
        'configuration_error',
        'auth.writeBack is set but nothing can write the secret here',
      );
    }
    try {
      await this.#opts.writeBack(rt);
    } catch (e) {
      const why = e instanceof SendError ? e.message : ((e as Error)?.name ?? 'error');
      throw new SendError(
        'configuration_error',
        `the provider rotated the refresh token but it could not be written back to the secret (${why})`,
        { cause: e },
      );
    }
    if (this.#pendingWriteBack === rt) this.#pendingWriteBack = undefined;
  }
}
