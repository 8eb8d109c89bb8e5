/**
 * The other ways in, through the local server and on to the mail catcher: `POST /send` (no IAM locally),
 * `POST /_local/events` (a detail only, or a full EventBridge event), `POST /_local/invoke` (direct invoke), a
 * multipart form post with an attachment — each message checked as it arrived (parsed by mailparser).
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocal, toEventBridgeEvent } from '../../local/server.ts';

let stack: LocalStack;

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  stack = await startLocal({ port: 0, smtpPort: 0 });
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

function newest() {
  const m = stack.catcher!.store.list()[0];
  if (!m) throw new Error('nothing caught');
  return m;
}

async function postJson(path: string, body: unknown) {
  const res = await fetch(`${stack.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { res, json: (await res.json()) as Record<string, unknown> };
}

describe('entry points on the local server', () => {
  it('POST /send needs no signature locally and delivers over STARTTLS + AUTH', async () => {
    const { res, json } = await postJson('/send', {
      to: 'team@example.com',
      subject: 'Hello from /send',
      text: 'Line one\n.Line with a leading dot',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('apigw-requestid')).toBeTruthy();
    const m = newest();
    expect(m.parsed.subject).toBe('Hello from /send');
    expect(m.parsed.messageId).toBe(json.messageId);
    expect(m.parsed.text).toContain('.Line with a leading dot');
    expect(m.session).toMatchObject({ secure: true, user: 'dev', clientHostname: 'localhost' });
    expect(m.envelope.rcptTo).toEqual(['team@example.com']);
  });

  it('POST /_local/events with only a detail: the envelope is filled in and the handler sends', async () => {
    const { res, json } = await postJson('/_local/events', {
      to: 'team@example.com',
      subject: 'From EventBridge',
      text: 'hi',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-amz-function-error')).toBeNull();
    expect(newest().parsed.subject).toBe('From EventBridge');
    expect(JSON.stringify(json)).toContain(newest().parsed.messageId!);
  });

  it('a failing event comes back the way Lambda reports a thrown error', async () => {
    const before = stack.catcher!.store.list().length;
    const res = await fetch(`${stack.url}/_local/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        'detail-type': 'Send Email',
        detail: { to: 'victim@evil.example', subject: 'x', text: 'y' },
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-amz-function-error')).toBe('Unhandled');
    const body = (await res.json()) as { errorType: string; errorMessage: string };
    expect(body.errorType).toBe('EventDeliveryError');
    expect(body.errorMessage).toMatch(/recipient_not_allowed|validation_failed/);
    expect(stack.catcher!.store.list()).toHaveLength(before);
  });

  it('fills only the missing envelope fields of a partial event', () => {
    const e = toEventBridgeEvent({ source: 'my.app', detail: { a: 1 } });
    expect(e).toMatchObject({
      version: '0',
      'detail-type': 'Send Email',
      source: 'my.app',
      detail: { a: 1 },
    });
    expect(e.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(e.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(toEventBridgeEvent({ to: 'x' })).toMatchObject({ detail: { to: 'x' }, resources: [] });
  });

  it('POST /_local/invoke is a direct invoke', async () => {
    const { res, json } = await postJson('/_local/invoke', {
      to: 'team@example.com',
      subject: 'Direct invoke',
      text: 'hi',
    });
    expect(res.status).toBe(200);
    expect(json).toMatchObject({ ok: true });
    expect(newest().parsed.subject).toBe('Direct invoke');
  });

  it('a failing direct invoke answers as Lambda Invoke does: 200, X-Amz-Function-Error, the code as errorType', async () => {
    const before = stack.catcher!.store.list().length;
    const { res, json } = await postJson('/_local/invoke', {
      to: 'team@example.com',
      subject: 'a\r\nBcc: victim@evil.example',
      text: 'hi',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-amz-function-error')).toBe('Unhandled');
    expect(Object.keys(json).sort()).toEqual(['errorMessage', 'errorType', 'trace']);
    expect(json.errorType).toBe('validation_failed');
    const problem = JSON.parse(json.errorMessage as string) as Record<string, unknown>;
    expect(problem).toMatchObject({
      code: 'validation_failed',
      status: 400,
      transient: false,
      errors: [expect.objectContaining({ field: 'subject', code: 'header_injection' })],
    });
    // One line: no code paths in the answer.
    expect(json.trace).toEqual([`validation_failed: ${json.errorMessage}`]);
    expect(stack.catcher!.store.list()).toHaveLength(before);
  });

  it('a multipart form post with an attachment arrives byte for byte (base64 event body)', async () => {
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a, 0x80]);
    const form = new FormData();
    form.append('name', 'Émile Zola');
    form.append('email', 'emile@example.org');
    form.append('message', 'J’accuse');
    form.append('attachment', new Blob([bytes], { type: 'application/octet-stream' }), 'lettre.bin');
    const res = await fetch(`${stack.url}/forms/contact`, {
      method: 'POST',
      headers: { accept: 'application/json', origin: stack.url },
      body: form,
    });
    expect(res.status).toBe(200);
    const m = newest();
    expect(m.parsed.subject).toBe('Contact form: Émile Zola');
    expect(m.parsed.replyTo?.text).toContain('emile@example.org');
    expect(m.parsed.attachments).toHaveLength(1);
    expect(m.parsed.attachments[0]!.filename).toBe('lettre.bin');
    expect(Buffer.from(m.parsed.attachments[0]!.content).equals(bytes)).toBe(true);
  });

  it('a plain browser-style form post gets the 303 to the thank-you page on the local port', async () => {
    // node:http, not fetch: fetch would send Sec-Fetch-Mode: cors, and the handler rightly answers JSON then.
    const body = 'name=Ada&email=ada%40example.org&message=hi';
    const res = await new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
      const req = request(`${stack.url}/forms/contact`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': String(body.length),
          accept: 'text/html,application/xhtml+xml',
          'sec-fetch-mode': 'navigate',
          origin: stack.url,
        },
      });
      req.on('response', (r) => {
        r.resume();
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`${stack.url}/thanks`);
    expect(res.headers['access-control-allow-origin']).toBe(stack.url);
  });

  it('idempotency runs locally on dynalite: a repeat is replayed, and the status answers (and reaches the inbox)', async () => {
    const body = { to: 'team@example.com', subject: 'Once only', text: 'one mail' };
    const key = `local-${Date.now()}`;
    const post = () =>
      fetch(`${stack.url}/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
      });
    const before = stack.catcher!.store.list().length;
    const first = await post();
    const again = await post();
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const { messageId } = (await first.json()) as { messageId: string };
    expect(((await again.json()) as { messageId: string }).messageId).toBe(messageId);
    expect(stack.catcher!.store.list().length).toBe(before + 1);
    const status = await fetch(`${stack.url}/messages/${encodeURIComponent(messageId)}`);
    expect(status.status).toBe(200);
    // No IAM locally: recipients as domains only.
    expect(await status.json()).toMatchObject({
      messageId,
      state: 'sent',
      accepted: [{ address: '*@example.com' }],
    });
    const inbox = (await (await fetch(`${stack.url}/inbox/api/messages`)).json()) as {
      messages: Array<{ messageId?: string }>;
    };
    expect(inbox.messages[0]!.messageId).toBe(messageId);
  });
});
