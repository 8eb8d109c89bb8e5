/**
 * `--url` for the CLI: `smtp://user@host:587` (STARTTLS, RFC 3207) or `smtps://user@host:465` (implicit TLS,
 * RFC 8314). The user part is percent-decoded as in any URL (`me%40example.com` → `me@example.com`).
 * A password in the URL is refused: it would land in shell history and in every process listing.
 */
import { domainToASCII } from 'node:url';
import type { Security } from '../smtp/types.ts';
import { UsageError } from './usage-error.ts';

export interface SmtpUrl {
  host: string;
  port: number;
  security: Security;
  user?: string;
}

const SCHEMES: Record<string, { security: Security; port: number }> = {
  'smtp:': { security: 'starttls', port: 587 },
  'smtps:': { security: 'tls', port: 465 },
};

export function parseSmtpUrl(text: string): SmtpUrl {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `--url: not a URL: ${JSON.stringify(redactUrl(text))} (expected smtp://user@host:587)`,
    );
  }
  const scheme = SCHEMES[url.protocol];
  if (!scheme) {
    throw new UsageError(
      `--url: scheme must be smtp:// (STARTTLS) or smtps:// (implicit TLS), not ${url.protocol}//`,
    );
  }
  if (url.password !== '') {
    throw new UsageError(
      '--url contains a password: refused (it would end up in shell history and process listings); ' +
        'give it with --password-env NAME or type it at the prompt',
    );
  }
  if (url.pathname !== '' && url.pathname !== '/')
    throw new UsageError('--url: no path is allowed after the host');
  if (url.search !== '' || url.hash !== '') throw new UsageError('--url: no query or fragment is allowed');
  // smtp: is not a "special" scheme for WHATWG URL: the host stays as typed (case kept, brackets around IPv6).
  let host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (host.includes('%')) {
    // an IDN arrives percent-encoded: connect to its A-label (RFC 5890)
    try {
      host = domainToASCII(decodeURIComponent(host));
    } catch {
      host = '';
    }
  }
  if (host === '') throw new UsageError('--url: host is missing');
  if (!/^[a-z0-9.:-]+$/.test(host)) throw new UsageError(`--url: not a host name or address: ${host}`);
  const port = url.port === '' ? scheme.port : Number(url.port);
  const out: SmtpUrl = { host, port, security: scheme.security };
  if (url.username !== '') {
    try {
      out.user = decodeURIComponent(url.username);
    } catch {
      throw new UsageError('--url: the user part has a broken percent-encoding');
    }
  }
  return out;
}

/** For messages: never echo what might be a password back (`smtp://u:***@h`). */
export function redactUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}
