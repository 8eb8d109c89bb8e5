/**
 * The hostile edge corpus (issue #10): every request an anonymous attacker tried against the public form route
 * (and the few against `/send`), in the exact HTTP API 2.0 shapes, with what must happen. Shared by
 * test/handlers/hostile-edge.test.ts (run against `handler()` and the bundled handler) and `npm run bench -- --edge`
 * (peak memory and CPU per case, bundled handler in a fresh process).
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { formEvent, httpEvent, sendEvent } from '../handlers/events.ts';

export const EDGE_ORIGIN = 'https://www.example.com';
export const EDGE_FORM = 'contact';
/** The secret id of the `missing-secret` setup: an ARN (account id, secret name) that must never reach a form. */
export const MISSING_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/smtp-AbCdEf';
/** Every answer but a redirect stays under this (Lambda's response limit is 6 MB; nothing is echoed unbounded). */
export const MAX_RESPONSE_BYTES = 64 * 1024;

/** The endpoint configuration every setup but `bad-config` runs with (the sample contact form, on one origin). */
export const EDGE_CONFIG = {
  send: { allowedRecipients: ['*@example.com'] },
  forms: {
    [EDGE_FORM]: {
      to: ['team@example.com'],
      subject: 'Contact form: {{name}}',
      fields: {
        name: { required: true, maxLength: 200, label: 'Name' },
        email: { required: true, type: 'email', maxLength: 254, label: 'Email' },
        message: { required: true, maxLength: 5000, label: 'Message' },
      },
      honeypot: '_gotcha',
      allowedOrigins: [EDGE_ORIGIN],
      redirect: `${EDGE_ORIGIN}/thanks`,
      redirectAllowlist: [`${EDGE_ORIGIN}/`],
      attachments: { maxFiles: 2, maxFileBytes: 2 * 1024 * 1024 },
    },
  },
};

/** Row 8: a configured recipient the one `parseMailbox` refuses (the old regex let it through). */
export const BAD_CONFIG = {
  forms: { [EDGE_FORM]: { to: ['team..x@example.com'], subject: 'Contact form' } },
};

export type EdgeSetup = 'default' | 'missing-secret' | 'bad-config';

export interface HostileCase {
  /** The issue's attacker-table row (`extra` = "Also found reading the code"). */
  row: number | 'extra';
  id: string;
  setup?: EdgeSetup;
  event(): APIGatewayProxyEventV2;
  expect: {
    status: number;
    /** The problem's `code` (JSON answers). */
    code?: string;
    /** A field error must name this field. */
    field?: string;
    /** Exact `Location` (303) — or `null`: none. */
    location?: string | null;
    /** Exact `access-control-allow-origin` — or `null`: none. */
    acao?: string | null;
    /** A message reaches the SMTP server. Default false. */
    sent?: boolean;
    /** Strings that must appear in no answer (body or header). */
    hidden?: string[];
    /** Strings that must appear in no answer and in no log line. */
    unlogged?: string[];
    /** Strings a log line of this invocation must carry (what the answer leaves out goes to the log). */
    logged?: string[];
  };
}

const valid = { name: 'Ana Lima', email: 'ana@visitor.example', message: 'Hello!' };
const script = { origin: EDGE_ORIGIN, accept: 'application/json', 'sec-fetch-mode': 'cors' };
const browser = { origin: EDGE_ORIGIN, accept: 'text/html', 'sec-fetch-mode': 'navigate' };
const MB = 1024 * 1024;

function form(body: string | Buffer, contentType: string, headers: Record<string, string> = script) {
  // HTTP API hands urlencoded and multipart bodies over base64-encoded, JSON as text.
  return formEvent(EDGE_FORM, {
    headers: { 'content-type': contentType, ...headers },
    body,
    base64: contentType !== 'application/json',
  });
}
const urlencoded = (pairs: Array<[string, string]>, headers?: Record<string, string>) =>
  form(
    pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'),
    'application/x-www-form-urlencoded',
    headers,
  );
/** Urlencoded with the values written raw (an attacker need not percent-encode `<`). */
const rawUrlencoded = (raw: string, headers?: Record<string, string>) =>
  form(raw, 'application/x-www-form-urlencoded', headers);
const validPairs = Object.entries(valid) as Array<[string, string]>;
const multipartPart = (disposition: string, value: string) =>
  Buffer.from(`--B\r\nContent-Disposition: form-data; ${disposition}\r\n\r\n${value}\r\n`);
const rawMultipart = (parts: Buffer[]) =>
  form(Buffer.concat([...parts, Buffer.from('--B--\r\n')]), 'multipart/form-data; boundary=B');
const namedParts = () => validPairs.map(([k, v]) => multipartPart(`name="${k}"`, v));
const sendWithHeaders = (headers: Record<string, string>) =>
  sendEvent({ to: 'bob@example.com', subject: 'Hi', text: 'x', headers });
const LT = (n: number) => '<'.repeat(n);

/** Local parts a parser must refuse: invisible, control, separator and bidi characters. */
export const HOSTILE_LOCAL_PARTS: Array<[string, string]> = [
  ['nbsp', 'ana\u00a0lima'],
  ['ideographic-space', 'ana\u3000lima'],
  ['c1-nel', 'ana\u0085lima'],
  ['line-separator', 'ana\u2028lima'],
  ['paragraph-separator', 'ana\u2029lima'],
  ['bidi-override', 'ana\u202elima'],
  ['bidi-isolate', 'ana\u2067lima'],
  ['zero-width-space', 'ana\u200blima'],
];

export const HOSTILE_CASES: HostileCase[] = [
  // 1 — bodies: urlencoded and JSON bodies are bounded by limits.maxBodyBytes; multipart fields too.
  {
    row: 1,
    id: 'urlencoded-4mb-unconfigured-fields',
    event: () =>
      rawUrlencoded(
        `${validPairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}&` +
          ['a', 'b', 'c', 'd'].map((k) => `${k}=${LT(MB)}`).join('&'),
      ),
    expect: { status: 413, code: 'payload_too_large', acao: EDGE_ORIGIN },
  },
  {
    row: 1,
    id: 'json-4mb-unconfigured-fields',
    event: () =>
      form(JSON.stringify({ ...valid, a: LT(MB), b: LT(MB), c: LT(MB), d: LT(MB) }), 'application/json', {
        origin: EDGE_ORIGIN,
      }),
    expect: { status: 413, code: 'payload_too_large', acao: EDGE_ORIGIN },
  },
  {
    row: 1,
    id: 'multipart-4mb-of-fields',
    event: () =>
      rawMultipart([
        ...namedParts(),
        ...['a', 'b', 'c', 'd'].map((k) => multipartPart(`name="${k}"`, LT(MB))),
      ]),
    expect: { status: 413, code: 'payload_too_large', acao: EDGE_ORIGIN },
  },
  {
    row: 1,
    id: 'urlencoded-under-the-body-limit-is-sent',
    event: () =>
      rawUrlencoded(
        `${validPairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}&extra=${LT(900 * 1024)}`,
      ),
    expect: { status: 200, sent: true, acao: EDGE_ORIGIN },
  },
  // 2 — field names: at most 64 characters; nothing from the request echoed unbounded.
  {
    row: 2,
    id: 'urlencoded-3mb-field-name',
    event: () => rawUrlencoded(`${LT(3 * MB)}=${'x'.repeat(MB + 1)}`),
    expect: { status: 413, code: 'payload_too_large' },
  },
  {
    row: 2,
    id: 'urlencoded-3mb-field-name-html',
    event: () => rawUrlencoded(`${LT(3 * MB)}=${'x'.repeat(MB + 1)}`, browser),
    expect: { status: 413 },
  },
  {
    row: 2,
    id: 'multipart-3mb-field-name',
    event: () => rawMultipart([...namedParts(), multipartPart(`name="${LT(3 * MB)}"`, 'x'.repeat(MB + 1))]),
    expect: { status: 400 },
  },
  {
    row: 2,
    id: 'urlencoded-long-field-name',
    event: () => urlencoded([...validPairs, [LT(1000), 'x']]),
    expect: { status: 400, code: 'validation_failed', field: LT(64) },
  },
  {
    row: 2,
    id: 'json-long-field-name-html',
    event: () => form(JSON.stringify({ ...valid, [LT(300_000)]: 'x' }), 'application/json', browser),
    expect: { status: 400 },
  },
  // 3 — redirects: Location is the normalised href; control characters → 400; decided before delivery.
  ...(
    [
      ['crlf-set-cookie', `${EDGE_ORIGIN}/thanks\r\nSet-Cookie: pwn=1`],
      ['leading-space', ` ${EDGE_ORIGIN}/thanks`],
      ['tab', `${EDGE_ORIGIN}/th\tanks`],
      ['nul', `${EDGE_ORIGIN}/thanks\u0000`],
    ] as const
  ).map(
    ([id, target]): HostileCase => ({
      row: 3,
      id: `redirect-${id}`,
      event: () => urlencoded([...validPairs, ['_next', target]], browser),
      expect: { status: 400, location: null },
    }),
  ),
  {
    row: 3,
    id: 'redirect-normalised',
    event: () =>
      urlencoded([...validPairs, ['_next', 'HTTPS://WWW.EXAMPLE.COM/thanks/./a%20b?x=<']], browser),
    expect: { status: 303, location: `${EDGE_ORIGIN}/thanks/a%20b?x=%3C`, sent: true },
  },
  // 4 — a multipart part with no usable name: 400, never a 500.
  {
    row: 4,
    id: 'multipart-field-without-name',
    event: () =>
      rawMultipart([...namedParts(), Buffer.from('--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n')]),
    expect: { status: 400, code: 'validation_failed' },
  },
  {
    row: 4,
    id: 'multipart-file-without-name',
    event: () => rawMultipart([...namedParts(), multipartPart('filename="a.txt"', 'x')]),
    expect: { status: 400, code: 'validation_failed' },
  },
  {
    row: 4,
    id: 'multipart-part-with-only-extended-name',
    event: () => rawMultipart([...namedParts(), multipartPart("name*=utf-8''x", 'x')]),
    expect: { status: 400, code: 'validation_failed' },
  },
  {
    row: 4,
    id: 'multipart-cut-off-inside-a-file',
    event: () =>
      form(
        Buffer.concat([
          ...namedParts(),
          Buffer.from('--B\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\npartial'),
        ]),
        'multipart/form-data; boundary=B',
      ),
    expect: { status: 400, code: 'validation_failed' },
  },
  // 5 — CORS: ACAO only for an allowed origin; never `null`; Vary: Origin always.
  ...(['https://evil.example', 'null', 'https://www.example.com.evil.com'] as const).flatMap(
    (origin): HostileCase[] => [
      {
        row: 5,
        id: `origin-${origin}`,
        event: () => form(JSON.stringify(valid), 'application/json', { ...script, origin }),
        expect: { status: 403, code: 'origin_not_allowed', acao: null },
      },
      {
        row: 5,
        id: `preflight-${origin}`,
        event: () =>
          formEvent(EDGE_FORM, {
            method: 'OPTIONS',
            headers: { origin, 'access-control-request-method': 'POST' },
          }),
        expect: { status: 403, acao: null },
      },
    ],
  ),
  {
    row: 5,
    id: 'origin-allowed',
    event: () => form(JSON.stringify(valid), 'application/json', script),
    expect: { status: 200, acao: EDGE_ORIGIN, sent: true },
  },
  // 6 — a broken deployment: the public answer names no ARN, account, secret or server text.
  ...(['application/json', 'text/html'] as const).map(
    (accept): HostileCase => ({
      row: 6,
      id: `missing-secret-${accept}`,
      setup: 'missing-secret',
      event: () => form(JSON.stringify(valid), 'application/json', { ...script, accept }),
      expect: {
        status: 500,
        code: accept === 'application/json' ? 'configuration_error' : undefined,
        hidden: ['arn:', '123456789012', 'prod/smtp', 'AbCdEf', 'ResourceNotFound'],
        logged: [MISSING_SECRET_ARN],
      },
    }),
  ),
  // 7 — addresses with invisible or control characters in the local part.
  ...HOSTILE_LOCAL_PARTS.map(
    ([id, local]): HostileCase => ({
      row: 7,
      id: `email-${id}`,
      event: () => form(JSON.stringify({ ...valid, email: `${local}@visitor.example` }), 'application/json'),
      expect: { status: 400, code: 'validation_failed', field: 'email', unlogged: [local] },
    }),
  ),
  {
    row: 7,
    id: 'send-to-nbsp',
    event: () => sendEvent({ to: 'bob\u00a0x@example.com', subject: 'Hi', text: 'x' }),
    expect: { status: 400, code: 'validation_failed', field: 'to', unlogged: ['bob\u00a0x'] },
  },
  // 8 — a configured recipient that cannot be parsed fails the cold start (documented configuration_error).
  {
    row: 8,
    id: 'bad-configured-recipient',
    setup: 'bad-config',
    event: () => form(JSON.stringify(valid), 'application/json'),
    expect: { status: 500, code: 'configuration_error', hidden: ['team..x'] },
  },
  // 9 — /send: at most 50 extra headers, names at most 64 characters.
  {
    row: 9,
    id: 'send-60000-header-names',
    event: () =>
      sendWithHeaders(Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [`${LT(80)}${i}`, 'v']))),
    expect: { status: 400, code: 'validation_failed', field: 'headers' },
  },
  {
    row: 9,
    id: 'send-10000-valid-headers',
    event: () =>
      sendWithHeaders(Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`X-H${i}`, 'v']))),
    expect: { status: 400, code: 'validation_failed', field: 'headers' },
  },
  {
    row: 9,
    id: 'send-65-char-header-name',
    event: () => sendWithHeaders({ [`X-${'a'.repeat(63)}`]: 'v' }),
    expect: { status: 400, code: 'validation_failed' },
  },
  {
    row: 9,
    id: 'send-50-headers-accepted',
    event: () => sendWithHeaders(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`X-H${i}`, 'v']))),
    expect: { status: 200, sent: true },
  },
  // Also found reading the code.
  {
    row: 'extra',
    id: 'urlencoded-repeated-values',
    event: () =>
      rawUrlencoded(`${validPairs.map(([k, v]) => `${k}=${v}`).join('&')}${'&message=x'.repeat(20_000)}`),
    expect: { status: 400, code: 'validation_failed' },
  },
  {
    row: 'extra',
    id: 'long-form-id',
    event: () =>
      httpEvent({
        path: `/forms/${'x'.repeat(6000)}`,
        headers: { 'content-type': 'application/json', ...script },
        body: JSON.stringify(valid),
      }),
    expect: { status: 404 },
  },
  {
    row: 'extra',
    id: 'long-content-type',
    event: () => form('x', `text/${'x'.repeat(8000)}`),
    expect: { status: 415 },
  },
];
