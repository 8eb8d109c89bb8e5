/**
 * A local CAPTCHA "siteverify" server with the shape Turnstile, hCaptcha and reCAPTCHA share:
 * `POST` form-urlencoded `secret`, `response`, `remoteip` → `{ "success": bool, "error-codes": [...] }`.
 * A token passes when it is in `validTokens` AND the secret equals `secret`; like the real services, a passing
 * answer says where the token was solved (`hostname`) and for which widget (`action`): `solvedOn` maps a token to
 * them (default: `hostname`, no action). Test-only.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CaptchaRequest {
  secret: string | null;
  response: string | null;
  remoteip: string | null;
}

export interface CaptchaEndpoint {
  /** The verify URL to put in the form's `captcha.verifyUrl`. */
  url: string;
  requests: CaptchaRequest[];
  /** Make the next request answer HTTP 500 (outage). */
  failNext(): void;
  close(): Promise<void>;
}

export async function startCaptchaEndpoint(opts: {
  secret: string;
  validTokens: string[];
  /** The host every valid token was solved on, unless `solvedOn` says otherwise. */
  hostname: string;
  solvedOn?: Record<string, { hostname?: string; action?: string }>;
}): Promise<CaptchaEndpoint> {
  const requests: CaptchaRequest[] = [];
  let fail = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const r = {
        secret: form.get('secret'),
        response: form.get('response'),
        remoteip: form.get('remoteip'),
      };
      requests.push(r);
      if (fail > 0) {
        fail--;
        res.writeHead(500).end('unavailable');
        return;
      }
      const errors: string[] = [];
      if (r.secret !== opts.secret) errors.push('invalid-input-secret');
      if (!r.response) errors.push('missing-input-response');
      else if (!opts.validTokens.includes(r.response)) errors.push('invalid-input-response');
      res.writeHead(200, { 'content-type': 'application/json' });
      const where = errors.length === 0 ? { hostname: opts.hostname, ...opts.solvedOn?.[r.response!] } : {};
      res.end(JSON.stringify({ success: errors.length === 0, 'error-codes': errors, ...where }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/siteverify`,
    requests,
    failNext() {
      fail++;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
