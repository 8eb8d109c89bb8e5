/** Small built-in HTML pages for browser form posts without a configured thank-you URL, and for errors. */

import { escapeHtml } from '../mime/html-text.ts';
import type { FailureCode } from './failure.ts';
import type { HttpResult } from './http.ts';

function page(status: number, title: string, body: string, headers: Record<string, string>): HttpResult {
  const html =
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    `<title>${escapeHtml(title)}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;` +
    'margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style></head><body>' +
    `<h1>${escapeHtml(title)}</h1>${body}</body></html>`;
  return {
    statusCode: status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
      ...headers,
    },
    body: html,
    isBase64Encoded: false,
  };
}

export function thankYouPage(headers: Record<string, string>): HttpResult {
  return page(200, 'Thank you', '<p>Your message has been sent.</p>', headers);
}

/** What the visitor should do next, by error code: by default correct the form and send it again. */
const NEXT_STEP: Partial<Record<FailureCode, string>> = {
  delivery_unknown:
    'Your message may have arrived: the connection to the mail server broke after the message was handed ' +
    'over. Please do not send it again; if you get no answer, contact us another way.',
  smtp_unavailable: 'Nothing was sent. Please try again in a few minutes.',
  captcha_unavailable: 'Nothing was sent. Please try again in a few minutes.',
};
const CORRECT_AND_RETRY = 'Use your browser’s back button to correct the form and try again.';

export function errorPage(
  status: number,
  title: string,
  detail: string,
  fields: Array<{ field: string; message: string }>,
  headers: Record<string, string>,
  code?: FailureCode,
): HttpResult {
  const list = fields.length
    ? `<ul>${fields.map((f) => `<li><strong>${escapeHtml(f.field)}</strong>: ${escapeHtml(f.message)}</li>`).join('')}</ul>`
    : '';
  const next = (code && NEXT_STEP[code]) ?? CORRECT_AND_RETRY;
  if (code === 'delivery_unknown') {
    // Not the API's wording ("do not retry blindly"): a visitor needs to know the message may be there.
    return page(status, 'Your message may have been sent', `<p>${escapeHtml(next)}</p>`, headers);
  }
  return page(status, title, `<p>${escapeHtml(detail)}</p>${list}<p>${escapeHtml(next)}</p>`, headers);
}
