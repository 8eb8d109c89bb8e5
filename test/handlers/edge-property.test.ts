/**
 * A property over generated anonymous requests to the public form route (issue #10, row 4): whatever the body,
 * content type, encoding, method, origin or form id, the handler answers — never a 5xx other than the documented
 * SMTP/configuration ones (`internal_error` never), every answer but a redirect under 64 KB, no CR/LF/NUL in a
 * header, and `Access-Control-Allow-Origin` only ever the allowed origin. 2,000 runs against `handler()` with a
 * real smtp-server behind it (valid posts are delivered).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EDGE_CONFIG, EDGE_FORM, EDGE_ORIGIN, MAX_RESPONSE_BYTES } from '../support/hostile-edge.ts';
import { formEvent, httpEvent } from './events.ts';
import { type Harness, startHarness } from './harness.ts';

const RUNS = 2000;
/** The 5xx a public answer may carry: the deployment's or the mail server's, never a crash. */
const DOCUMENTED_5XX = ['smtp_rejected', 'smtp_unavailable', 'delivery_unknown', 'configuration_error'];

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ config: EDGE_CONFIG });
});
afterAll(async () => {
  await h?.close();
});

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '\r\n', '\0', '<', '%', '%0D%0A', '%ZZ', '&', '=', '"', "''", '\uFFFD', '\u202e'),
);
const fieldName = fc.oneof(
  fc.constantFrom(
    'name',
    'email',
    'message',
    '_next',
    'redirect',
    '_gotcha',
    'cf-turnstile-response',
    'files',
  ),
  text,
  fc.string({ minLength: 60, maxLength: 80 }),
);
const fieldValue = fc.oneof(
  text,
  fc.constantFrom(
    'ana@visitor.example',
    'ana\u00a0x@visitor.example',
    '"a b"@visitor.example',
    'Ana <ana@visitor.example>',
    `${EDGE_ORIGIN}/thanks`,
    `${EDGE_ORIGIN}/thanks\r\nSet-Cookie: x=1`,
    'https://evil.example/',
    'javascript:alert(1)',
  ),
);
const pairs = fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 8 });
/** Valid fields first, then anything: some generated posts are deliverable. */
const fields = fc.oneof(
  pairs,
  pairs.map(
    (rest): Array<[string, string]> => [
      ['name', 'Ana'],
      ['email', 'ana@visitor.example'],
      ['message', 'Hi'],
      ...rest,
    ],
  ),
);

const urlencodedBody = fc
  .tuple(fields, fc.boolean())
  .map(([list, encode]) =>
    list
      .map(([k, v]) => (encode ? `${encodeURIComponent(k)}=${encodeURIComponent(v)}` : `${k}=${v}`))
      .join('&'),
  );
const disposition = fc.oneof(
  fieldName.map((n) => `form-data; name="${n}"`),
  fc.tuple(fieldName, text).map(([n, f]) => `form-data; name="${n}"; filename="${f}"`),
  fc.constantFrom('form-data', 'form-data; filename="a.txt"', "form-data; name*=utf-8''x", 'attachment', ''),
  text,
);
const multipartBody = fc
  .tuple(fc.array(fc.tuple(disposition, fc.option(text), fieldValue), { maxLength: 6 }), fc.boolean(), fields)
  .map(([parts, close, valid]) => {
    const named = valid.map(([k, v]) => `--B\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
    const odd = parts.map(
      ([d, type, v]) =>
        `--B\r\nContent-Disposition: ${d}\r\n${type === null ? '' : `Content-Type: ${type}\r\n`}\r\n${v}\r\n`,
    );
    return [...named, ...odd].join('') + (close ? '--B--\r\n' : '');
  });
const jsonBody = fc.oneof(
  fields.map((list) => JSON.stringify(Object.fromEntries(list))),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  text,
);

const request = fc
  .record({
    kind: fc.constantFrom('urlencoded', 'multipart', 'json', 'other'),
    urlencoded: urlencodedBody,
    multipart: multipartBody,
    json: jsonBody,
    other: text,
    otherType: fc.oneof(
      text,
      fc.constantFrom('text/plain', 'multipart/form-data', 'application/json; charset=x'),
    ),
    encoding: fc.constantFrom('as-aws', 'base64', 'text', 'bad-base64'),
    method: fc.constantFrom('POST', 'POST', 'POST', 'OPTIONS', 'GET', 'PUT'),
    formId: fc.oneof(fc.constant(EDGE_FORM), fc.constant(EDGE_FORM), text, fc.constant('__proto__')),
    origin: fc.option(
      fc.constantFrom(EDGE_ORIGIN, 'https://evil.example', 'null', `${EDGE_ORIGIN}.evil.com`, ''),
    ),
    accept: fc.option(fc.constantFrom('application/json', 'text/html', '*/*', '')),
    fetchMode: fc.option(fc.constantFrom('cors', 'navigate', 'no-cors', 'same-origin', 'websocket')),
  })
  .map((r) => {
    const [contentType, body] =
      r.kind === 'urlencoded'
        ? ['application/x-www-form-urlencoded', r.urlencoded]
        : r.kind === 'multipart'
          ? ['multipart/form-data; boundary=B', r.multipart]
          : r.kind === 'json'
            ? ['application/json', r.json]
            : [r.otherType, r.other];
    const headers: Record<string, string> = { 'content-type': contentType };
    if (r.origin !== null) headers.origin = r.origin;
    if (r.accept !== null) headers.accept = r.accept;
    if (r.fetchMode !== null) headers['sec-fetch-mode'] = r.fetchMode;
    const base64 = r.encoding === 'base64' || (r.encoding === 'as-aws' && contentType !== 'application/json');
    const event = /^[\w-]+$/u.test(r.formId)
      ? formEvent(r.formId, { method: r.method, headers, body, base64 })
      : httpEvent({
          method: r.method,
          path: `/forms/${encodeURIComponent(r.formId)}`,
          headers,
          body,
          base64,
        });
    if (r.encoding === 'bad-base64') {
      event.isBase64Encoded = true;
      event.body = `${body}!`;
    }
    return event;
  });

describe('no anonymous form request produces an undocumented 5xx', () => {
  it(`${RUNS} generated requests: documented answers only, bounded, CORS only for the allowed origin`, async () => {
    await fc.assert(
      fc.asyncProperty(request, async (event) => {
        const logsBefore = h.logs.length;
        const res = (await h.invoke(event)) as {
          statusCode: number;
          headers: Record<string, string>;
          body?: string;
        };
        const summary = h.logs.slice(logsBefore).find((l) => typeof l.entryPoint === 'string');
        const code = summary?.code as string | undefined;
        if (res.statusCode >= 500) expect(DOCUMENTED_5XX, `${res.statusCode} ${code}`).toContain(code);
        expect(code).not.toBe('internal_error');
        if (res.statusCode !== 303) {
          expect(Buffer.byteLength(res.body ?? '', 'utf8')).toBeLessThan(MAX_RESPONSE_BYTES);
        }
        for (const value of Object.values(res.headers)) expect(String(value)).not.toMatch(/[\r\n\0]/);
        const acao = res.headers['access-control-allow-origin'];
        if (acao !== undefined) expect(acao).toBe(EDGE_ORIGIN);
      }),
      { numRuns: RUNS },
    );
    expect(h.srv.messages.length, 'some generated posts are deliverable').toBeGreaterThan(0);
  }, 300_000);
});
