/**
 * The local API answers exactly as the Lambda does: each hostile request goes once through the local HTTP server
 * (real socket) and once straight into `handler()` with a payload 2.0 event built by hand here (independently of
 * local/http-api-event.ts) — same status, same headers, same body.
 */

import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLambdaContext } from '../../local/lambda-context.ts';
import { type LocalStack, startLocal } from '../../local/server.ts';

let stack: LocalStack;

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  stack = await startLocal({ port: 0, smtpPort: 0 });
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

interface HostileRequest {
  name: string;
  method: string;
  path: string;
  query?: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** What API Gateway does with this body: text, or base64 (`isBase64Encoded`). */
  base64?: boolean;
  routeKey: string;
  pathParameters?: Record<string, string>;
}

const ua = 'hostile-client/1.0';
const urlencoded = (s: string) => Buffer.from(s, 'utf8');

function cases(origin: string): HostileRequest[] {
  return [
    {
      name: 'CRLF header injection through a templated field (JSON answer)',
      method: 'POST',
      path: '/forms/contact',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', origin },
      body: urlencoded(
        'name=Ada%0D%0ABcc%3A%20victim%40evil.example&email=ada%40example.org&message=hi&_to=attacker%40evil.example',
      ),
      base64: true,
      routeKey: 'POST /forms/{formId}',
      pathParameters: { formId: 'contact' },
    },
    {
      name: 'a foreign origin',
      method: 'POST',
      path: '/forms/contact',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        origin: 'https://evil.example',
      },
      body: urlencoded('name=Ada&email=ada%40example.org&message=hi'),
      base64: true,
      routeKey: 'POST /forms/{formId}',
      pathParameters: { formId: 'contact' },
    },
    {
      name: 'an open-redirect attempt from a browser form (HTML error page)',
      method: 'POST',
      path: '/forms/contact',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', origin },
      body: urlencoded(
        'name=%3Cscript%3Ex%3C%2Fscript%3E&email=ada%40example.org&message=hi&_next=https%3A%2F%2Fevil.example%2F',
      ),
      base64: true,
      routeKey: 'POST /forms/{formId}',
      pathParameters: { formId: 'contact' },
    },
    {
      name: 'a form id that does not exist',
      method: 'POST',
      path: '/forms/..%2F..%2Fetc',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: Buffer.from('{"name":"x"}'),
      routeKey: 'POST /forms/{formId}',
      pathParameters: { formId: '../../etc' },
    },
    {
      name: 'a broken multipart body',
      method: 'POST',
      path: '/forms/contact',
      headers: { 'content-type': 'multipart/form-data; boundary=zzz', accept: 'application/json', origin },
      body: Buffer.from('--zzz\r\nContent-Disposition: form-data; name="name"\r\n\r\nAda\r\n--zz', 'utf8'),
      base64: true,
      routeKey: 'POST /forms/{formId}',
      pathParameters: { formId: 'contact' },
    },
    {
      name: '/send with invalid JSON',
      method: 'POST',
      path: '/send',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from('{"to": ["a@example.com"], "subject": "x\r\nBcc: y@evil.example", '),
      routeKey: 'POST /send',
    },
    {
      name: '/send asking for a recipient outside the allowlist, CRLF in the subject',
      method: 'POST',
      path: '/send',
      query: 'debug=1&debug=2',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(
        JSON.stringify({ to: 'victim@evil.example', subject: 'hi\r\nBcc: y@evil.example', text: 'x' }),
        'utf8',
      ),
      routeKey: 'POST /send',
    },
    {
      name: 'a CORS preflight',
      method: 'OPTIONS',
      path: '/forms/contact',
      headers: { origin, 'access-control-request-method': 'POST' },
      routeKey: 'OPTIONS /forms/{formId}',
      pathParameters: { formId: 'contact' },
    },
  ];
}

/** The event API Gateway sends, written out by hand. */
function handBuiltEvent(r: HostileRequest, port: number) {
  const now = new Date();
  const headers: Record<string, string> = {
    ...r.headers,
    host: `127.0.0.1:${port}`,
    'user-agent': ua,
    'x-forwarded-for': '127.0.0.1',
    'x-forwarded-port': String(port),
    'x-forwarded-proto': 'http',
    'x-amzn-trace-id': 'Root=1-00000000-000000000000000000000000',
  };
  if (r.body) headers['content-length'] = String(r.body.length);
  return {
    version: '2.0',
    routeKey: r.routeKey,
    rawPath: r.path,
    rawQueryString: r.query ?? '',
    headers,
    ...(r.query ? { queryStringParameters: Object.fromEntries(new URLSearchParams(r.query)) } : {}),
    ...(r.pathParameters ? { pathParameters: r.pathParameters } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: '127.0.0.1',
      domainPrefix: '127',
      http: { method: r.method, path: r.path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: ua },
      requestId: 'hand-built',
      routeKey: r.routeKey,
      stage: '$default',
      time: '26/Nov/2026:04:00:00 +0000',
      timeEpoch: now.getTime(),
    },
    ...(r.body ? { body: r.base64 ? r.body.toString('base64') : r.body.toString('utf8') } : {}),
    isBase64Encoded: r.base64 === true,
  };
}

/** Send exactly these headers (fetch would add sec-fetch-mode & co., which the handler rightly reads). */
function send(
  r: HostileRequest,
  port: number,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...r.headers, host: `127.0.0.1:${port}`, 'user-agent': ua };
    if (r.body) headers['content-length'] = String(r.body.length);
    const req = request({
      host: '127.0.0.1',
      port,
      method: r.method,
      path: `${r.path}${r.query ? `?${r.query}` : ''}`,
      headers,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const h: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (!PER_REQUEST_HEADERS.has(name) && value !== undefined) h[name] = String(value);
        }
        resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

/** Per-invocation ids differ by nature; everything else must be identical. */
function normalize(body: string, requestIds: string[]): string {
  let out = body;
  for (const id of requestIds) out = out.replaceAll(id, '<request-id>');
  return out.replace(/"requestId":"[^"]*"/g, '"requestId":"<request-id>"');
}

const PER_REQUEST_HEADERS = new Set([
  'apigw-requestid',
  'date',
  'connection',
  'keep-alive',
  'content-length',
]);

describe('local API ≡ Lambda handler', () => {
  it('answers every hostile request exactly as handler() does', async () => {
    const statuses: number[] = [];
    for (const r of cases(stack.url)) {
      const res = await send(r, stack.port);
      const localBody = res.body;
      const localHeaders = res.headers;

      const context = createLambdaContext();
      const direct = (await stack.handler(handBuiltEvent(r, stack.port), context)) as {
        statusCode: number;
        headers: Record<string, string>;
        body?: string;
        isBase64Encoded?: boolean;
      };
      const directHeaders = Object.fromEntries(
        Object.entries(direct.headers ?? {})
          .map(([k, v]) => [k.toLowerCase(), String(v)] as const)
          .filter(([k]) => !PER_REQUEST_HEADERS.has(k)),
      );
      const directBody = direct.isBase64Encoded
        ? Buffer.from(direct.body ?? '', 'base64').toString('utf8')
        : (direct.body ?? '');

      expect({ case: r.name, status: res.status }).toEqual({ case: r.name, status: direct.statusCode });
      expect({ case: r.name, headers: localHeaders }).toEqual({ case: r.name, headers: directHeaders });
      expect({ case: r.name, body: normalize(localBody, []) }).toEqual({
        case: r.name,
        body: normalize(directBody, [context.awsRequestId]),
      });
      expect(res.status, r.name).toBeGreaterThanOrEqual(r.method === 'OPTIONS' ? 200 : 400);
      statuses.push(res.status);
      if (res.status >= 400 && r.headers.accept === 'application/json') {
        expect(res.headers['content-type'], r.name).toMatch(/^application\/problem\+json/);
      }
    }
    // Each case reaches the check it aims at (not one generic failure).
    expect([...statuses]).toEqual([400, 403, 400, 404, 400, 400, 400, 204]);
    // And nothing hostile got through to the mail server.
    expect(stack.catcher!.store.list()).toEqual([]);
  });

  it('answers unknown routes and wrong methods as API Gateway does, without invoking the function', async () => {
    for (const [method, path] of [
      ['GET', '/send'],
      ['DELETE', '/forms/contact'],
      ['POST', '/nope'],
    ] as const) {
      const res = await fetch(`${stack.url}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(await res.json()).toEqual({ message: 'Not Found' });
    }
  });
});
