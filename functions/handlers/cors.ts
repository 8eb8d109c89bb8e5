/**
 * CORS for the public form routes, one decision: which headers an answer carries, and whether a browser post from
 * this origin is taken at all.
 */
import type { EndpointConfig, FormConfig } from '../config/endpoint.ts';

/**
 * The CORS decision for a form response, in one place: `Vary: Origin` always; `Access-Control-Allow-Origin` only
 * for an origin the form lists in `allowedOrigins` (`*` there → `*`), never `null`. For a form id that does not
 * exist, an origin any form lists. A form without `allowedOrigins` takes posts from anywhere but lets no
 * cross-origin script read its answers.
 */
export function corsHeaders(
  config: EndpointConfig | undefined,
  form: FormConfig | undefined,
  origin: string | undefined,
): Record<string, string> {
  const h: Record<string, string> = { vary: 'Origin' };
  if (!origin || origin === 'null' || !config) return h;
  const lists = form
    ? [form.allowedOrigins ?? []]
    : Object.values(config.forms ?? {}).map((f) => f.allowedOrigins ?? []);
  if (lists.some((list) => list.includes(origin))) h['access-control-allow-origin'] = origin;
  else if (lists.some((list) => list.includes('*'))) h['access-control-allow-origin'] = '*';
  return h;
}

/** May a browser on `origin` post this form? */
export function originAllowed(form: FormConfig, origin: string | undefined): boolean {
  // No Origin header: not a browser cross-site request (curl, server-side). The origin check is a browser
  // control; spam protection is the honeypot and the CAPTCHA.
  if (origin === undefined) return true;
  if (!form.allowedOrigins) return true;
  return form.allowedOrigins.includes('*') || form.allowedOrigins.includes(origin);
}
