/**
 * The payload 2.0 event the local server builds from a real HTTP request, and how a Lambda result is written
 * back — checked over real sockets (node:http server + raw client), no mocks.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clfTime,
  fromLambdaResult,
  isTextContentType,
  matchRoute,
  readBody,
  snapshotRequest,
  toHttpApiEvent,
  writeHttpApiResponse,
} from '../../local/http-api-event.ts';

let server: Server;
let port: number;
/** What the next request should answer with (a Lambda result); the event it produced is echoed otherwise. */
let nextResult: unknown;

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = (await readBody(req, 1024 * 1024)) ?? Buffer.alloc(0);
    const path = (req.url ?? '/').split('?')[0]!;
    const match = matchRoute(req.method ?? 'GET', path);
    if (!match) {
      res.writeHead(404).end();
      return;
    }
    const event = toHttpApiEvent(
      snapshotRequest(req, body),
      match,
      new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
      'REQ=',
    );
    const result = nextResult ?? {
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(event),
    };
    nextResult = undefined;
    writeHttpApiResponse(res, fromLambdaResult(result));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

/** A raw request: headers as a list, so duplicates and case survive. */
function send(
  method: string,
  path: string,
  headers: Array<[string, string]>,
  body?: Buffer | string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      method,
      path,
      headers: [['Host', `127.0.0.1:${port}`], ...headers].flat() as unknown as Record<string, string>,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function eventFor(
  method: string,
  path: string,
  headers: Array<[string, string]>,
  body?: Buffer | string,
): Promise<APIGatewayProxyEventV2> {
  const r = await send(method, path, headers, body);
  expect(r.status).toBe(200);
  return JSON.parse(r.body.toString('utf8')) as APIGatewayProxyEventV2;
}

describe('request → payload format 2.0 event', () => {
  it('builds the envelope API Gateway builds for POST /forms/{formId}', async () => {
    const e = await eventFor(
      'POST',
      '/forms/con%74act?x=1&y=a%20b&x=2',
      [
        ['Content-Type', 'application/json'],
        ['X-Custom', 'one'],
        ['x-custom', 'two'],
        ['Cookie', 'a=1; b=2'],
        ['User-Agent', 'test-agent/1.0'],
        ['Connection', 'keep-alive'],
      ],
      '{"name":"Ada"}',
    );
    expect(e.version).toBe('2.0');
    expect(e.routeKey).toBe('POST /forms/{formId}');
    expect(e.rawPath).toBe('/forms/con%74act');
    expect(e.rawQueryString).toBe('x=1&y=a%20b&x=2');
    expect(e.queryStringParameters).toEqual({ x: '1,2', y: 'a b' });
    expect(e.pathParameters).toEqual({ formId: 'contact' });
    expect(e.cookies).toEqual(['a=1', 'b=2']);
    expect(e.headers.cookie).toBeUndefined();
    expect(e.headers.connection).toBeUndefined();
    expect(e.headers['x-custom']).toBe('one,two');
    expect(e.headers['content-type']).toBe('application/json');
    expect(e.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(e.headers['x-forwarded-proto']).toBe('http');
    expect(e.headers['x-amzn-trace-id']).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(Object.keys(e.headers).every((k) => k === k.toLowerCase())).toBe(true);
    expect(e.body).toBe('{"name":"Ada"}');
    expect(e.isBase64Encoded).toBe(false);
    expect(e.requestContext).toMatchObject({
      accountId: '000000000000',
      apiId: 'local',
      domainName: '127.0.0.1',
      http: {
        method: 'POST',
        path: '/forms/con%74act',
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'test-agent/1.0',
      },
      requestId: 'REQ=',
      routeKey: 'POST /forms/{formId}',
      stage: '$default',
      time: '02/Jan/2026:03:04:05 +0000',
      timeEpoch: Date.UTC(2026, 0, 2, 3, 4, 5),
    });
  });

  it('base64-encodes form posts, multipart and binary bodies byte for byte; text types stay text', async () => {
    const form = await eventFor(
      'POST',
      '/forms/contact',
      [['content-type', 'application/x-www-form-urlencoded']],
      'name=%C3%89mile&x=1',
    );
    expect(form.isBase64Encoded).toBe(true);
    expect(Buffer.from(form.body!, 'base64').toString('utf8')).toBe('name=%C3%89mile&x=1');

    const binary = Buffer.from([0, 0xff, 0xfe, 0x0d, 0x0a, 0x80, 0x41]);
    const multipart = await eventFor(
      'POST',
      '/forms/contact',
      [['content-type', 'multipart/form-data; boundary=xyz']],
      binary,
    );
    expect(multipart.isBase64Encoded).toBe(true);
    expect(Buffer.from(multipart.body!, 'base64').equals(binary)).toBe(true);

    const none = await eventFor('POST', '/send', [], binary);
    expect(none.isBase64Encoded).toBe(true);
    expect(none.routeKey).toBe('POST /send');
    expect(none.pathParameters).toBeUndefined();
    expect(none.queryStringParameters).toBeUndefined();
    expect(none.cookies).toBeUndefined();

    const text = await eventFor('POST', '/send', [['content-type', 'text/plain; charset=utf-8']], 'héllo');
    expect(text).toMatchObject({ body: 'héllo', isBase64Encoded: false });

    const empty = await eventFor('OPTIONS', '/forms/contact', [['Origin', 'http://127.0.0.1:3000']]);
    expect(empty.body).toBeUndefined();
    expect(empty.isBase64Encoded).toBe(false);
    expect(empty.routeKey).toBe('OPTIONS /forms/{formId}');
  });

  it('classifies content types as HTTP API does', () => {
    expect(isTextContentType('application/json; charset=utf-8')).toBe(true);
    expect(isTextContentType('TEXT/HTML')).toBe(true);
    expect(isTextContentType('application/xml')).toBe(true);
    expect(isTextContentType('application/x-www-form-urlencoded')).toBe(false);
    expect(isTextContentType('multipart/form-data; boundary=a')).toBe(false);
    expect(isTextContentType(undefined)).toBe(false);
  });

  it('matches only the deployed routes', () => {
    expect(matchRoute('GET', '/send')).toBeUndefined();
    expect(matchRoute('POST', '/send/')).toBeUndefined();
    expect(matchRoute('POST', '/forms/a/b')).toBeUndefined();
    expect(matchRoute('POST', '/forms/')).toBeUndefined();
    expect(matchRoute('POST', '/forms/a%2Fb')?.pathParameters).toEqual({ formId: 'a/b' });
  });

  it('formats requestContext.time in CLF', () => {
    expect(clfTime(new Date(Date.UTC(2026, 10, 26, 23, 59, 9)))).toBe('26/Nov/2026:23:59:09 +0000');
  });
});

describe('Lambda result → HTTP response', () => {
  it('writes status, headers, cookies as separate Set-Cookie lines, and decodes base64 bodies', async () => {
    nextResult = {
      statusCode: 303,
      headers: { Location: '/thanks', 'X-One': 'a' },
      multiValueHeaders: { 'X-Many': ['1', '2'] },
      cookies: ['s=1; Path=/', 't=2; HttpOnly'],
      body: Buffer.from([0xde, 0xad, 0xbe, 0xef]).toString('base64'),
      isBase64Encoded: true,
    };
    const r = await send('POST', '/send', [['content-type', 'application/json']], '{}');
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/thanks');
    expect(r.headers['x-one']).toBe('a');
    expect(r.headers['x-many']).toBe('1, 2');
    expect(r.headers['set-cookie']).toEqual(['s=1; Path=/', 't=2; HttpOnly']);
    expect(r.body.equals(Buffer.from([0xde, 0xad, 0xbe, 0xef]))).toBe(true);
    expect(r.headers['content-length']).toBe('4');
  });

  it('sends no Content-Length and no body with a 204', async () => {
    nextResult = { statusCode: 204, headers: { vary: 'Origin' }, body: '' };
    const r = await send('OPTIONS', '/forms/contact', []);
    expect(r.status).toBe(204);
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.headers.vary).toBe('Origin');
    expect(r.body.length).toBe(0);
  });

  it('treats a result without statusCode as a 200 JSON body, as HTTP API does', async () => {
    nextResult = { ok: true };
    const r = await send('POST', '/send', [], '{}');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body.toString())).toEqual({ ok: true });
    expect(fromLambdaResult('plain').body.toString()).toBe('plain');
  });
});
