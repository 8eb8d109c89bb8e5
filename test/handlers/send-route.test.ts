/** POST /send end to end: HTTP API 2.0 event → handler → real SMTP client → smtp-server → mailparser. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HttpResult } from '../../functions/handlers/http.ts';
import { httpEvent, sendEvent } from './events.ts';
import { type Harness, SECRET_ID, startHarness } from './harness.ts';

const config = {
  send: {
    allowedRecipients: ['*@example.com', '*@example.org'],
    allowedSenders: ['noreply@example.com', '*@example.org'],
  },
  limits: { maxRecipients: 50, maxBatch: 10 },
};

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ config });
});
afterAll(async () => {
  await h?.close();
});
beforeEach(() => {
  h.srv.messages.length = 0;
  h.srv.mailFrom.length = 0;
});

const post = async (body: unknown, headers?: Record<string, string>) =>
  (await h.invoke(sendEvent(body, headers))) as HttpResult;
// biome-ignore lint/suspicious/noExplicitAny: reading response JSON in assertions
const bodyOf = (r: HttpResult) => JSON.parse(String(r.body)) as Record<string, any>;

const message = {
  to: 'alice@example.com',
  cc: ['Bob <bob@example.org>'],
  replyTo: 'support@example.org',
  subject: 'Your order 123 — shipped ✓',
  text: 'Hello Alice,\nyour order has shipped.\n.\nBye',
  html: '<p>Hello <b>Alice</b></p>',
  attachments: [
    {
      filename: 'invoice.pdf',
      contentType: 'application/pdf',
      content: Buffer.from('%PDF-1.4 fake').toString('base64'),
    },
  ],
  headers: { 'X-Order-Id': '123' },
};

describe('POST /send', () => {
  it('delivers one message and answers { messageId, accepted, rejected }', async () => {
    const res = await post(message);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const out = bodyOf(res);
    expect(out.accepted.sort()).toEqual(['alice@example.com', 'bob@example.org']);
    expect(out.rejected).toEqual([]);
    expect(out.messageId).toMatch(/^<.+@example\.com>$/);
    expect(h.srv.messages).toHaveLength(1);
    expect(h.srv.messages[0]!.secure).toBe(true);
    const mail = await h.parsed();
    expect(mail.subject).toBe(message.subject);
    expect(mail.from?.value[0]).toMatchObject({ address: 'noreply@example.com', name: 'Example Mailer' });
    expect(mail.text).toContain('your order has shipped.\n.\nBye');
    expect(mail.html).toContain('<b>Alice</b>');
    expect(mail.replyTo?.value[0]?.address).toBe('support@example.org');
    expect(mail.attachments[0]?.filename).toBe('invoice.pdf');
    expect(mail.attachments[0]?.content.toString()).toBe('%PDF-1.4 fake');
    expect(mail.headers.get('x-order-id')).toBe('123');
    expect(mail.messageId).toBe(out.messageId);
  });

  it('reports a rejected recipient while delivering to the others', async () => {
    const res = await post({ ...message, cc: undefined, to: ['alice@example.com', 'reject-me@example.com'] });
    expect(res.statusCode).toBe(200);
    const out = bodyOf(res);
    expect(out.accepted).toEqual(['alice@example.com']);
    expect(out.rejected).toEqual([
      { address: 'reject-me@example.com', code: 550, message: expect.any(String) },
    ]);
    expect(h.srv.messages[0]!.envelope.to).toEqual(['alice@example.com']);
  });

  it('all recipients refused → 502 smtp_rejected with the SMTP code', async () => {
    const res = await post({ to: 'reject-all@example.com', subject: 's', text: 't' });
    expect(res.statusCode).toBe(502);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const p = bodyOf(res);
    expect(p).toMatchObject({ code: 'smtp_rejected', status: 502, smtp: { code: 550, phase: 'rcpt' } });
    expect(p.type).toBe('urn:smtp-send:problem:smtp_rejected');
    expect(h.srv.messages).toHaveLength(0);
  });

  it('a sender in allowedSenders may be used; others are refused (403)', async () => {
    const ok = await post({
      from: 'News <news@example.org>',
      to: 'alice@example.com',
      subject: 's',
      text: 't',
    });
    expect(ok.statusCode).toBe(200);
    expect((await h.parsed()).from?.value[0]?.address).toBe('news@example.org');
    const bad = await post({ from: 'ceo@evil.example', to: 'alice@example.com', subject: 's', text: 't' });
    expect(bad.statusCode).toBe(403);
    expect(bodyOf(bad).code).toBe('sender_not_allowed');
    expect(h.srv.messages).toHaveLength(1);
  });

  it('recipients outside allowedRecipients → 403 recipient_not_allowed, nothing sent', async () => {
    const res = await post({ to: ['alice@example.com'], bcc: ['x@elsewhere.net'], subject: 's', text: 't' });
    expect(res.statusCode).toBe(403);
    const p = bodyOf(res);
    expect(p.code).toBe('recipient_not_allowed');
    expect(p.errors[0]).toMatchObject({ field: 'bcc', code: 'recipient_not_allowed' });
    expect(h.srv.mailFrom).toHaveLength(0);
  });

  it('a batch of 5 over one session: one rejected recipient, the others delivered, 207', async () => {
    const connectionsBefore = h.srv.connections;
    const messages = Array.from({ length: 5 }, (_, i) => ({
      to: i === 2 ? 'reject-this@example.com' : `user${i}@example.com`,
      subject: `Batch ${i}`,
      text: `Message ${i}`,
    }));
    const res = await post({ messages });
    expect(res.statusCode).toBe(207);
    const { results } = bodyOf(res);
    expect(results.map((r: { status: string }) => r.status)).toEqual([
      'accepted',
      'accepted',
      'rejected',
      'accepted',
      'accepted',
    ]);
    expect(results[2].error).toMatchObject({ code: 'smtp_rejected', smtp: { code: 550 } });
    expect(results[0].messageId).toMatch(/^<.+>$/);
    expect(h.srv.messages.map((m) => m.envelope.to[0])).toEqual([
      'user0@example.com',
      'user1@example.com',
      'user3@example.com',
      'user4@example.com',
    ]);
    // One session (the warm one may be reused: at most one new connection).
    expect(h.srv.connections - connectionsBefore).toBeLessThanOrEqual(1);
  });

  it('a batch where every message is accepted answers 200; invalid items do not stop the others', async () => {
    const ok = await post({ messages: [{ to: 'a@example.com', subject: 'a', text: 'a' }] });
    expect(ok.statusCode).toBe(200);
    const mixed = await post({
      messages: [
        { to: 'a@example.com', subject: 'a' },
        { to: 'b@example.com', subject: 'b', text: 'b' },
      ],
    });
    expect(mixed.statusCode).toBe(207);
    const { results } = bodyOf(mixed);
    expect(results[0]).toMatchObject({ status: 'rejected', error: { code: 'validation_failed' } });
    expect(results[0].error.errors[0]).toMatchObject({ field: 'messages[0].text', code: 'required' });
    expect(results[1].status).toBe('accepted');
  });

  it('a batch over limits.maxBatch is refused whole', async () => {
    const messages = Array.from({ length: 11 }, () => ({ to: 'a@example.com', subject: 's', text: 't' }));
    const res = await post({ messages });
    expect(res.statusCode).toBe(400);
    expect(bodyOf(res).errors[0]).toMatchObject({ field: 'messages', code: 'too_many_messages' });
    expect(h.srv.mailFrom).toHaveLength(0);
  });

  it('reuses the warm session across invocations', async () => {
    await post({ to: 'a@example.com', subject: 's', text: 't' });
    const before = h.srv.connections;
    await post({ to: 'b@example.com', subject: 's', text: 't' });
    await post({ to: 'c@example.com', subject: 's', text: 't' });
    expect(h.srv.connections).toBe(before);
    const summary = h.logs.filter((l) => l.entryPoint === 'http_send').at(-1)!;
    expect(summary.reused).toBe(true);
  });
});

describe('POST /send: bad input → 4xx problem and nothing sent', () => {
  const base = { to: 'alice@example.com', subject: 'Hello', text: 'Body' };
  const expectProblem = async (
    body: unknown,
    status: number,
    code: string,
    field?: string,
    headers?: Record<string, string>,
  ) => {
    const res = await post(body, headers);
    expect(res.statusCode, JSON.stringify(res.body)).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const p = bodyOf(res);
    expect(p.code).toBe(code);
    expect(p.status).toBe(status);
    expect(p.type).toBe(`urn:smtp-send:problem:${code}`);
    expect(typeof p.title).toBe('string');
    expect(typeof p.detail).toBe('string');
    if (field) expect(p.errors.map((e: { field: string }) => e.field)).toContain(field);
    expect(JSON.stringify(p)).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    expect(h.srv.mailFrom).toHaveLength(0);
    return p;
  };

  it('wrong types and missing fields', async () => {
    await expectProblem({ ...base, to: 42 }, 400, 'validation_failed', 'to');
    await expectProblem({ ...base, subject: undefined }, 400, 'validation_failed', 'subject');
    await expectProblem({ ...base, text: undefined }, 400, 'validation_failed', 'text');
    await expectProblem({ ...base, to: [] }, 400, 'validation_failed', 'to');
    await expectProblem({ ...base, attachments: [{ filename: 'a.txt' }] }, 400, 'validation_failed');
    await expectProblem({ ...base, bodyy: 'typo' }, 400, 'validation_failed', 'bodyy');
    await expectProblem([base], 400, 'validation_failed');
    await expectProblem('"just a string"', 400, 'validation_failed');
    await expectProblem({ ...base, to: 'not an address' }, 400, 'validation_failed', 'to');
  });

  it('CR/LF in every header-bound field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ subject: 'Hi\r\nBcc: victim@example.com' }, 'subject'],
      [{ subject: 'Hi\nX: y' }, 'subject'],
      [{ to: 'alice@example.com\r\nBcc: victim@example.com' }, 'to'],
      [{ to: ['alice@example.com', 'b@example.com\n'] }, 'to[1]'],
      [{ cc: 'c@example.com\r\n' }, 'cc'],
      [{ bcc: ['d@example.com\rX'] }, 'bcc[0]'],
      [{ replyTo: 'r@example.com\r\nX: y' }, 'replyTo'],
      [{ from: 'noreply@example.com\r\nX: y' }, 'from'],
      [{ headers: { 'X-Tag': 'a\r\nBcc: victim@example.com' } }, 'headers.X-Tag'],
      [{ headers: { 'X-Bad\r\nName': 'v' } }, 'headers.X-Bad\r\nName'],
      [
        { attachments: [{ filename: 'a\r\n.txt', contentType: 'text/plain', content: 'YQ==' }] },
        'attachments[0].filename',
      ],
      [
        { attachments: [{ filename: 'a.txt', contentType: 'text/plain\r\nX: y', content: 'YQ==' }] },
        'attachments[0].contentType',
      ],
    ];
    for (const [patch, field] of cases) {
      const p = await expectProblem({ ...base, ...patch }, 400, 'validation_failed', field);
      expect(p.errors.find((e: { field: string }) => e.field === field).code).toMatch(
        /header_injection|invalid_header_name/,
      );
    }
  });

  it('a 10 MB body → 413', async () => {
    await expectProblem({ ...base, text: 'x'.repeat(10 * 1024 * 1024) }, 413, 'payload_too_large', 'body');
  });

  it('a text body over maxBodyBytes → 413 naming the field', async () => {
    await expectProblem({ ...base, text: 'x'.repeat(1024 * 1024 + 1) }, 413, 'payload_too_large', 'text');
  });

  it('invalid UTF-8 → 400 field body', async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"to":"alice@example.com","subject":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('","text":"x"}'),
    ]);
    const res = (await h.invoke(
      httpEvent({ path: '/send', headers: { 'content-type': 'application/json' }, body: bytes }),
    )) as HttpResult;
    expect(res.statusCode).toBe(400);
    expect(bodyOf(res).errors[0]).toMatchObject({ field: 'body', code: 'invalid_utf8' });
  });

  it('invalid JSON → 400 field body', async () => {
    await expectProblem('{"to": "alice@example.com",', 400, 'validation_failed', 'body');
  });

  it('invalid base64 in an attachment → 400 naming the attachment', async () => {
    for (const content of ['not base64!', 'YQ', 'YR==', 'YQ==\n', 'Y Q==']) {
      const p = await expectProblem(
        { ...base, attachments: [{ filename: 'a.bin', contentType: 'application/octet-stream', content }] },
        400,
        'validation_failed',
        'attachments[0].content',
      );
      expect(p.errors[0].code).toBe('invalid_base64');
    }
  });

  it('1,000 recipients → 400 too_many_recipients', async () => {
    const to = Array.from({ length: 1000 }, (_, i) => `user${i}@example.com`);
    const p = await expectProblem({ ...base, to }, 400, 'validation_failed', 'to');
    expect(p.errors[0].code).toBe('too_many_recipients');
  });

  it('wrong content type → 415; wrong method → 405; unknown route → 404', async () => {
    await expectProblem(base, 415, 'unsupported_media_type', undefined, { 'content-type': 'text/plain' });
    const get = (await h.invoke(httpEvent({ method: 'GET', path: '/send' }))) as HttpResult;
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe('POST');
    const nf = (await h.invoke(httpEvent({ path: '/nope', body: '{}' }))) as HttpResult;
    expect(nf.statusCode).toBe(404);
    expect(bodyOf(nf).code).toBe('not_found');
    expect(nf.headers['content-type']).toMatch(/problem\+json/);
  });

  it('a stage prefix in rawPath is understood', async () => {
    const ev = httpEvent({
      path: '/send',
      stage: 'prod',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(base),
    });
    const res = (await h.invoke(ev)) as HttpResult;
    expect(res.statusCode).toBe(200);
  });
});

describe('secret rotation and SMTP failures', () => {
  it('535 after a rotation: the secret is read again and the send retried once', async () => {
    await h.handler.close(); // drop the warm session so the next send authenticates
    const before = h.sm.calls('GetSecretValue', SECRET_ID);
    h.password.current = 'rotated-password-2';
    h.sm.rotateSecret(SECRET_ID, h.secret({ password: 'rotated-password-2' }));
    const res = await post({ to: 'alice@example.com', subject: 'after rotation', text: 't' });
    expect(res.statusCode, String(res.body)).toBe(200);
    expect(h.sm.calls('GetSecretValue', SECRET_ID)).toBe(before + 1);
    expect((await h.parsed()).subject).toBe('after rotation');
    const summary = h.logs.filter((l) => l.entryPoint === 'http_send').at(-1)!;
    expect(summary.secretRefreshed).toBe(true);
  });

  it('a wrong password even after re-reading → 500 configuration_error, no loop', async () => {
    await h.handler.close();
    const before = h.sm.calls('GetSecretValue', SECRET_ID);
    const attemptsBefore = h.srv.authAttempts.length;
    h.password.current = 'server-side-only';
    const res = await post({ to: 'alice@example.com', subject: 's', text: 't' });
    expect(res.statusCode).toBe(500);
    const p = bodyOf(res);
    expect(p).toMatchObject({ code: 'configuration_error', smtp: { code: 535, phase: 'auth' } });
    expect(p.detail).toContain('freshly read secret');
    expect(h.sm.calls('GetSecretValue', SECRET_ID)).toBe(before + 1);
    expect(h.srv.authAttempts.length - attemptsBefore).toBe(2);
    expect(h.srv.mailFrom).toHaveLength(0);
    expect(JSON.stringify(p)).not.toContain('rotated-password-2');
    h.password.current = 'rotated-password-2';
  });

  it('a temporary refusal is retried then answered 503 with Retry-After', async () => {
    const res = await post({ to: 'defer-me@example.com', subject: 's', text: 't' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    const p = bodyOf(res);
    expect(p).toMatchObject({ code: 'smtp_unavailable', smtp: { code: 451, phase: 'rcpt' } });
    const summary = h.logs.filter((l) => l.entryPoint === 'http_send').at(-1)!;
    expect(summary.attempts).toBe(3);
  });

  it('a missing secret is a configuration_error (500) that says it is our problem', async () => {
    const { createHandler } = await import('../../functions/handlers/index.ts');
    const broken = createHandler({
      env: { SMTP_SECRET_ID: 'missing-secret', ENDPOINT_CONFIG: JSON.stringify(config) },
    });
    const res = (await broken(sendEvent({ to: 'a@example.com', subject: 's', text: 't' }), {
      awsRequestId: 'r1',
      getRemainingTimeInMillis: () => 10_000,
    } as never)) as HttpResult;
    expect(res.statusCode).toBe(500);
    const p = bodyOf(res);
    expect(p.code).toBe('configuration_error');
    expect(p.title).toMatch(/not a problem with your request/);
    await broken.close();
  });
});

describe('logging', () => {
  it('one structured summary per invocation: request id, entry point, outcome, domains only, no secrets or bodies', async () => {
    h.logs.length = 0;
    h.rawLog.length = 0;
    await post({ to: 'secret-person@example.com', subject: 'Private subject', text: 'Private body text' });
    const summary = h.logs.find((l) => l.entryPoint === 'http_send')!;
    expect(summary).toMatchObject({
      level: 'INFO',
      service: 'smtp-send-test',
      outcome: 'sent',
      status: 200,
      recipientDomains: ['example.com'],
    });
    expect(summary.function_request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof summary.durationMs).toBe('number');
    expect(typeof summary.roundTrips).toBe('number');
    const all = h.rawLog.join('\n');
    for (const forbidden of ['secret-person', 'Private subject', 'Private body text', h.password.current]) {
      expect(all).not.toContain(forbidden);
    }
  });
});

describe('cold start and module scope', () => {
  it('concurrent first invocations share one secret fetch', async () => {
    const { createHandler } = await import('../../functions/handlers/index.ts');
    const fresh = createHandler({
      env: { SMTP_SECRET_ID: SECRET_ID, ENDPOINT_CONFIG: JSON.stringify(config) },
    });
    const before = h.sm.calls('GetSecretValue', SECRET_ID);
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        fresh(sendEvent({ to: `p${i}@example.com`, subject: 's', text: 't' }), {
          awsRequestId: `r${i}`,
          getRemainingTimeInMillis: () => 20_000,
        } as never),
      ),
    );
    expect(results.map((r) => (r as HttpResult).statusCode)).toEqual([200, 200, 200, 200, 200]);
    expect(h.sm.calls('GetSecretValue', SECRET_ID)).toBe(before + 1);
    await fresh.close();
  });

  it('SMTP_REUSE=false opens a new session for every send', async () => {
    const { createHandler } = await import('../../functions/handlers/index.ts');
    const noReuse = createHandler({
      env: { SMTP_SECRET_ID: SECRET_ID, ENDPOINT_CONFIG: JSON.stringify(config), SMTP_REUSE: 'false' },
    });
    const ctx = { awsRequestId: 'x', getRemainingTimeInMillis: () => 20_000 } as never;
    const before = h.srv.connections;
    for (let i = 0; i < 3; i++) {
      const res = (await noReuse(
        sendEvent({ to: 'a@example.com', subject: 's', text: 't' }),
        ctx,
      )) as HttpResult;
      expect(res.statusCode).toBe(200);
    }
    expect(h.srv.connections - before).toBe(3);
    await noReuse.close();
  });

  it('an invalid endpoint config: one ERROR line naming every bad path; every entry point answers configuration_error', async () => {
    const { createHandler } = await import('../../functions/handlers/index.ts');
    h.logs.length = 0;
    const broken = createHandler({
      env: {
        SMTP_SECRET_ID: SECRET_ID,
        ENDPOINT_CONFIG: JSON.stringify({ limits: { maxBatch: 0 }, forms: { c: { to: 'x', subject: 's' } } }),
      },
    });
    const configLines = h.logs.filter((l) => l.code === 'configuration_error');
    expect(configLines).toHaveLength(1);
    expect(configLines[0]!.message).toContain('limits.maxBatch: must be at least 1');
    expect(configLines[0]!.message).toContain('forms.c.to');
    const ctx = { awsRequestId: 'x', getRemainingTimeInMillis: () => 20_000 } as never;
    const send = (await broken(
      sendEvent({ to: 'a@example.com', subject: 's', text: 't' }),
      ctx,
    )) as HttpResult;
    expect(send.statusCode).toBe(500);
    expect(bodyOf(send).code).toBe('configuration_error');
    expect(bodyOf(send).detail).not.toContain('maxBatch'); // details stay in the log, not in public answers
    // A failed direct invoke throws, named by its code (so an asynchronous invoke is retried, then dead-lettered).
    const direct = (await broken({ to: 'a@example.com', subject: 's', text: 't' }, ctx).then(
      () => {
        throw new Error('expected the direct invoke to throw');
      },
      (e: unknown) => e,
    )) as Error;
    expect(direct.name).toBe('configuration_error');
    expect(JSON.parse(direct.message)).toMatchObject({ code: 'configuration_error', status: 500 });
    expect(direct.message).not.toContain('maxBatch');
    expect(h.srv.mailFrom).toHaveLength(0);
    await broken.close();
  });
});
