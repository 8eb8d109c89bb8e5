/**
 * The first requests of the cold-start benchmark, in the exact shapes Lambda hands a function: a direct invoke
 * (the `/send` payload) and two HTTP API 2.0 form posts built by the local API's own event builder
 * (`toHttpApiEvent`: a non-text body arrives base64-encoded, as API Gateway sends it). And the endpoint
 * configuration both handlers run with (valid for ours and for the frozen twin).
 */
import { matchRoute, toHttpApiEvent } from '../local/http-api-event.ts';

export type RequestKind = 'direct' | 'urlencoded' | 'multipart';
export const REQUEST_KINDS: readonly RequestKind[] = ['direct', 'urlencoded', 'multipart'];

export const COLD_ENDPOINT_CONFIG = {
  send: { allowedRecipients: ['*@example.com'] },
  forms: {
    contact: {
      to: ['team@example.com'],
      subject: 'Contact form: {{name}}',
      fields: {
        name: { required: true, maxLength: 200 },
        email: { required: true, type: 'email', maxLength: 254 },
        message: { required: true, maxLength: 5000 },
      },
      honeypot: '_gotcha',
      attachments: { maxFiles: 1, maxFileBytes: 65_536 },
    },
  },
};

const FIELDS = {
  name: 'Ann Example',
  email: 'ann@example.org',
  message: 'Hello,\nthis is the first request of a fresh process.\nThanks!',
};
const BOUNDARY = '----bench-cold-start-7d1f0c';

function multipartBody(fields: typeof FIELDS): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(
      Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`),
    );
  }
  const file = Buffer.from('Notes for the team.\n'.repeat(50));
  parts.push(
    Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="attachment"; filename="notes.txt"\r\n` +
        'Content-Type: text/plain\r\n\r\n',
    ),
    file,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  );
  return Buffer.concat(parts);
}

function formPost(contentType: string, body: Buffer): unknown {
  const url = '/forms/contact';
  const match = matchRoute('POST', url);
  if (!match) throw new Error(`no HTTP API route for POST ${url}`);
  const headers = {
    host: 'abc123.execute-api.us-east-1.amazonaws.com',
    'content-type': contentType,
    'content-length': String(body.length),
    accept: 'application/json',
    'user-agent': 'bench-cold-start',
  };
  return toHttpApiEvent(
    {
      method: 'POST',
      url,
      rawHeaders: Object.entries(headers).flat(),
      body,
      sourceIp: '203.0.113.7',
      protocol: 'HTTP/1.1',
      localPort: 443,
    },
    match,
  );
}

/**
 * The request of `kind`; `nonce` (in the message text) makes each one a new submission, so that with the send
 * records table a form post is not a repeat of the previous process's (a repeat is replayed, not sent).
 */
export function coldEvent(kind: RequestKind, nonce = ''): unknown {
  const tag = nonce ? ` [${nonce}]` : '';
  if (kind === 'direct') {
    return {
      to: 'cold-start@example.com',
      subject: 'Cold start',
      text: `First request of a fresh process.${tag}`,
    };
  }
  const fields = { ...FIELDS, message: `${FIELDS.message}${tag}` };
  if (kind === 'urlencoded') {
    return formPost('application/x-www-form-urlencoded', Buffer.from(new URLSearchParams(fields).toString()));
  }
  return formPost(`multipart/form-data; boundary=${BOUNDARY}`, multipartBody(fields));
}
