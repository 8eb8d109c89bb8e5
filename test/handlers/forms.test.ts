/** POST /forms/{formId}: browser posts, fetch, multipart uploads, honeypot, CORS, redirects, CAPTCHA. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HttpResult } from '../../functions/handlers/http.ts';
import { type CaptchaEndpoint, startCaptchaEndpoint } from '../support/captcha-endpoint.ts';
import { formEvent, multipart } from './events.ts';
import { type Harness, startHarness } from './harness.ts';

const ORIGIN = 'https://www.example.com';
const browser = { origin: ORIGIN, accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };
const script = { origin: ORIGIN, accept: 'application/json', 'sec-fetch-mode': 'cors' };

let h: Harness;
let captcha: CaptchaEndpoint;

beforeAll(async () => {
  captcha = await startCaptchaEndpoint({
    secret: 'turnstile-secret',
    validTokens: ['good-token', 'other-site-token', 'other-widget-token', 'contact-token'],
    hostname: 'www.example.com',
    solvedOn: {
      'other-site-token': { hostname: 'evil.example' },
      'other-widget-token': { action: 'newsletter' },
      'contact-token': { action: 'contact' },
    },
  });
  const contact = {
    to: ['team@example.com'],
    subject: 'Contact form: {{name}}',
    fields: {
      name: { required: true, maxLength: 50, label: 'Name' },
      email: { required: true, type: 'email', maxLength: 254 },
      message: { required: true, maxLength: 2000 },
    },
    honeypot: '_gotcha',
    allowedOrigins: [ORIGIN],
    redirect: `${ORIGIN}/thanks`,
    redirectAllowlist: [`${ORIGIN}/thanks/`, `${ORIGIN}/thanks`],
    attachments: { maxFiles: 2, maxFileBytes: 100_000 },
  };
  h = await startHarness({
    config: {
      send: { allowedRecipients: ['*@nowhere.invalid'] }, // forms ignore the /send allowlist: recipients are fixed
      forms: {
        contact,
        plain: { to: 'team@example.com', subject: 'Plain form' },
        captcha: {
          to: ['team@example.com'],
          subject: 'Captcha form',
          allowedOrigins: [ORIGIN],
          captcha: { provider: 'turnstile', secretId: 'captcha-secret', verifyUrl: captcha.url },
        },
        captchaOutage: {
          to: ['team@example.com'],
          subject: 'Captcha form whose secret cannot be read',
          captcha: { provider: 'turnstile', secretId: 'captcha-outage-secret', verifyUrl: captcha.url },
        },
        captchaAction: {
          to: ['team@example.com'],
          subject: 'Captcha form with an action',
          captcha: {
            provider: 'turnstile',
            secretId: 'captcha-secret',
            verifyUrl: captcha.url,
            hostnames: ['www.example.com'],
            action: 'contact',
          },
        },
      },
    },
  });
  h.sm.setSecret('captcha-secret', { secret: 'turnstile-secret' });
  h.sm.setSecret('captcha-outage-secret', { secret: 'turnstile-secret' });
});
afterAll(async () => {
  await h?.close();
  await captcha?.close();
});
beforeEach(() => {
  h.srv.messages.length = 0;
  h.srv.mailFrom.length = 0;
});

const urlencoded = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const submit = async (
  formId: string,
  body: string | Buffer,
  contentType: string,
  headers: Record<string, string> = browser,
  base64 = false,
) =>
  (await h.invoke(
    formEvent(formId, { headers: { 'content-type': contentType, ...headers }, body, base64 }),
  )) as HttpResult;
// biome-ignore lint/suspicious/noExplicitAny: reading response JSON in assertions
const bodyOf = (r: HttpResult) => JSON.parse(String(r.body)) as Record<string, any>;
const valid = {
  name: 'Ana <b>Lima</b>',
  email: 'ana@visitor.example',
  message: 'Hello!\nSecond line & more',
};

describe('form submissions', () => {
  it('urlencoded browser post → 303 to the thank-you URL; message to the configured team', async () => {
    const res = await submit(
      'contact',
      urlencoded({ ...valid, to: 'attacker@evil.example', _gotcha: '' }),
      'application/x-www-form-urlencoded',
    );
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`${ORIGIN}/thanks`);
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(res.headers.vary).toBe('Origin');
    expect(h.srv.messages).toHaveLength(1);
    expect(h.srv.messages[0]!.envelope.to).toEqual(['team@example.com']); // never from the request
    const mail = await h.parsed();
    expect(mail.from?.value[0]?.address).toBe('noreply@example.com');
    expect(mail.replyTo?.value[0]?.address).toBe('ana@visitor.example');
    expect(mail.subject).toBe('Contact form: Ana <b>Lima</b>');
    expect(mail.text).toContain('Name: Ana <b>Lima</b>');
    expect(mail.text).toContain('message:\n  Hello!\n  Second line & more');
    expect(mail.text).toContain('to: attacker@evil.example'); // listed as data, not used
    expect(mail.html).toContain('Ana &#60;b&#62;Lima&#60;/b&#62;');
    expect(mail.html).not.toContain('<b>Lima</b>');
    expect(mail.text).not.toContain('_gotcha');
  });

  it('multipart with two files (base64 body, as HTTP API delivers binary) and JSON answer', async () => {
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const { body, contentType } = multipart(Object.entries(valid), [
      { field: 'files', filename: 'bytes.bin', type: 'application/octet-stream', content: binary },
      { field: 'files', filename: 'résumé.txt', type: 'text/plain', content: Buffer.from('CV text ✓') },
    ]);
    const res = await submit('contact', body, contentType, script, true);
    expect(res.statusCode, String(res.body)).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
    const mail = await h.parsed();
    expect(bodyOf(res)).toEqual({ ok: true, status: 'sent', messageId: mail.messageId });
    expect(mail.attachments.map((a) => a.filename)).toEqual(['bytes.bin', 'résumé.txt']);
    expect(Buffer.compare(mail.attachments[0]!.content, binary)).toBe(0);
    expect(mail.attachments[1]!.content.toString('utf8')).toBe('CV text ✓');
    expect(mail.text).toContain('Attachments: bytes.bin, résumé.txt');
  });

  it('JSON body from fetch → JSON answer', async () => {
    const res = await submit('contact', JSON.stringify(valid), 'application/json', { origin: ORIGIN });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(bodyOf(res).ok).toBe(true);
    expect(h.srv.messages).toHaveLength(1);
  });

  it('a form without redirect answers a built-in thank-you page', async () => {
    const res = await submit('plain', urlencoded({ anything: 'goes' }), 'application/x-www-form-urlencoded');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.body).toContain('Thank you');
    expect((await h.parsed()).subject).toBe('Plain form');
  });

  it('honeypot filled → the same success answer, nothing sent, logged as spam', async () => {
    const res = await submit(
      'contact',
      urlencoded({ ...valid, _gotcha: 'http://spam' }),
      'application/x-www-form-urlencoded',
    );
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`${ORIGIN}/thanks`);
    const json = await submit(
      'contact',
      JSON.stringify({ ...valid, _gotcha: 'x' }),
      'application/json',
      script,
    );
    expect(json.statusCode).toBe(200);
    expect(h.srv.mailFrom).toHaveLength(0);
    expect(h.logs.filter((l) => l.entryPoint === 'http_form').at(-1)).toMatchObject({
      outcome: 'spam',
      formId: 'contact',
    });
    const real = await submit('contact', JSON.stringify(valid), 'application/json', script);
    // A bot cannot tell it was caught: the same shape, a Message-ID of the same form (a decoy's).
    const shape = (body: string) => body.replace(/<[0-9a-f]{32}@/u, '<…@');
    expect(shape(json.body as string)).toBe(shape(real.body as string));
    expect(JSON.parse(json.body as string).messageId).toMatch(/^<[0-9a-f]{32}@example\.com>$/u);
    expect(json.headers).toEqual(real.headers);
    expect(h.srv.messages).toHaveLength(1); // only the real one
  });

  it('an origin not in allowedOrigins → 403 with Vary: Origin but no ACAO (never echoed); nothing sent', async () => {
    const res = await submit('contact', JSON.stringify(valid), 'application/json', {
      ...script,
      origin: 'https://evil.example',
    });
    expect(res.statusCode).toBe(403);
    expect(bodyOf(res).code).toBe('origin_not_allowed');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers.vary).toBe('Origin');
    expect(h.srv.mailFrom).toHaveLength(0);
  });

  it('CORS headers on a 400, for fetch (problem+json) and for a browser post (HTML error page)', async () => {
    const res = await submit('contact', JSON.stringify({ ...valid, email: '' }), 'application/json', script);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(bodyOf(res).errors).toEqual([{ field: 'email', code: 'required', message: 'is required' }]);
    const page = await submit(
      'contact',
      urlencoded({ ...valid, name: '' }),
      'application/x-www-form-urlencoded',
    );
    expect(page.statusCode).toBe(400);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(page.body).toContain('<strong>name</strong>');
    expect(h.srv.mailFrom).toHaveLength(0);
  });

  it('OPTIONS preflight: allowed origin → 204 with CORS; other origin → 403', async () => {
    const ok = (await h.invoke(
      formEvent('contact', {
        method: 'OPTIONS',
        headers: {
          origin: ORIGIN,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      }),
    )) as HttpResult;
    expect(ok.statusCode).toBe(204);
    expect(ok.headers).toMatchObject({
      'access-control-allow-origin': ORIGIN,
      'access-control-allow-methods': 'POST, OPTIONS',
      'access-control-allow-headers': 'content-type, accept',
    });
    const bad = (await h.invoke(
      formEvent('contact', { method: 'OPTIONS', headers: { origin: 'https://evil.example' } }),
    )) as HttpResult;
    expect(bad.statusCode).toBe(403);
    expect(bad.headers['access-control-allow-methods']).toBeUndefined();
  });

  it('redirect: an allowlisted _next is followed; an open-redirect attempt → 400, nothing sent', async () => {
    const ok = await submit(
      'contact',
      urlencoded({ ...valid, _next: `${ORIGIN}/thanks/special?x=1` }),
      'application/x-www-form-urlencoded',
    );
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe(`${ORIGIN}/thanks/special?x=1`);
    h.srv.mailFrom.length = 0;
    for (const target of [
      'https://evil.example/phish',
      `${ORIGIN}.evil.example/thanks/`,
      `https://www.example.com@evil.example/thanks/`,
      '//evil.example/thanks/',
      'javascript:alert(1)',
    ]) {
      for (const field of ['_next', 'redirect']) {
        const res = await submit(
          'contact',
          urlencoded({ ...valid, [field]: target }),
          'application/x-www-form-urlencoded',
        );
        expect(res.statusCode, target).toBe(400);
        expect(res.headers.location).toBeUndefined();
        expect(res.body).toContain(field);
      }
    }
    expect(h.srv.mailFrom).toHaveLength(0);
  });

  it('unknown form → 404 (with CORS)', async () => {
    const res = await submit('nope', JSON.stringify(valid), 'application/json', script);
    expect(res.statusCode).toBe(404);
    expect(bodyOf(res).code).toBe('form_not_found');
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
    const proto = await submit('__proto__', JSON.stringify(valid), 'application/json', script);
    expect(proto.statusCode).toBe(404);
  });
});

describe('CAPTCHA', () => {
  it('a valid token passes (secret from Secrets Manager, remote IP forwarded)', async () => {
    const res = await submit(
      'captcha',
      urlencoded({ comment: 'hi', 'cf-turnstile-response': 'good-token' }),
      'application/x-www-form-urlencoded',
      script,
    );
    expect(res.statusCode, String(res.body)).toBe(200);
    expect(captcha.requests.at(-1)).toEqual({
      secret: 'turnstile-secret',
      response: 'good-token',
      remoteip: '198.51.100.7',
    });
    const mail = await h.parsed();
    expect(mail.text).toContain('comment: hi');
    expect(mail.text).not.toContain('good-token');
  });

  it('a bad token → 403 captcha_failed; a missing token → 400; nothing sent', async () => {
    const bad = await submit(
      'captcha',
      urlencoded({ comment: 'hi', 'cf-turnstile-response': 'forged' }),
      'application/x-www-form-urlencoded',
      script,
    );
    expect(bad.statusCode).toBe(403);
    expect(bodyOf(bad).code).toBe('captcha_failed');
    const missing = await submit(
      'captcha',
      urlencoded({ comment: 'hi' }),
      'application/x-www-form-urlencoded',
      script,
    );
    expect(missing.statusCode).toBe(400);
    expect(bodyOf(missing).code).toBe('captcha_failed');
    expect(h.srv.mailFrom).toHaveLength(0);
  });

  it('a token solved on another site, or for another action, → 403; nothing sent', async () => {
    const post = (formId: string, token: string) =>
      submit(
        formId,
        urlencoded({ comment: 'hi', 'cf-turnstile-response': token }),
        'application/x-www-form-urlencoded',
        script,
      );
    // The form's allowedOrigins name the host the token must come from.
    const elsewhere = await post('captcha', 'other-site-token');
    expect(elsewhere.statusCode).toBe(403);
    expect(bodyOf(elsewhere)).toMatchObject({ code: 'captcha_failed' });
    expect(bodyOf(elsewhere).detail).toContain('hostname-mismatch');
    // captcha.action: the answer must carry it.
    expect((await post('captchaAction', 'good-token')).statusCode).toBe(403); // solved without an action
    const widget = await post('captchaAction', 'other-widget-token');
    expect(widget.statusCode).toBe(403);
    expect(bodyOf(widget).detail).toContain('action-mismatch');
    expect(h.srv.mailFrom).toHaveLength(0);
    expect((await post('captchaAction', 'contact-token')).statusCode).toBe(200);
  });

  it('the verify service failing → 503 captcha_unavailable with Retry-After', async () => {
    captcha.failNext();
    const res = await submit(
      'captcha',
      urlencoded({ comment: 'hi', 'cf-turnstile-response': 'good-token' }),
      'application/x-www-form-urlencoded',
      script,
    );
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(bodyOf(res).code).toBe('captcha_unavailable');
    expect(h.srv.mailFrom).toHaveLength(0);
  });
});

describe('the CAPTCHA secret unreadable', () => {
  it('Secrets Manager throttling → 503 captcha_unavailable (not smtp_unavailable: the mail server is fine)', async () => {
    // The Secrets Manager client makes 2 attempts; both fail. The CAPTCHA secret is the first one read here.
    h.sm.failNext({ type: 'ThrottlingException', status: 400, operation: 'GetSecretValue', times: 2 });
    const body = urlencoded({ comment: 'hi', 'cf-turnstile-response': 'good-token' });
    const post = () => submit('captchaOutage', body, 'application/x-www-form-urlencoded', script);
    const res = await post();
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    const p = bodyOf(res);
    expect(p.code).toBe('captcha_unavailable');
    expect(p.detail).not.toMatch(/mail server|Secrets Manager|Throttling/u);
    expect(h.srv.mailFrom).toHaveLength(0);
    expect(h.logs.filter((l) => l.entryPoint === 'http_form').at(-1)).toMatchObject({
      code: 'captcha_unavailable',
      status: 503,
    });
    // Once Secrets Manager answers again, the same post is verified and sent.
    const again = await post();
    expect(again.statusCode, String(again.body)).toBe(200);
  });
});

describe('form bad input → 4xx and nothing sent', () => {
  const expectRefused = async (res: HttpResult, status: number, code: string, field?: string) => {
    expect(res.statusCode, String(res.body)).toBe(status);
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
    const p = bodyOf(res);
    expect(p.code).toBe(code);
    if (field) expect(p.errors.map((e: { field: string }) => e.field)).toContain(field);
    expect(h.srv.mailFrom).toHaveLength(0);
  };
  const json = (fields: Record<string, unknown>) =>
    submit('contact', JSON.stringify(fields), 'application/json', script);

  it('CR/LF in header-bound fields (subject template field, Reply-To)', async () => {
    await expectRefused(
      await json({ ...valid, name: 'Ana\r\nBcc: victim@example.com' }),
      400,
      'validation_failed',
      'name',
    );
    await expectRefused(await json({ ...valid, name: 'Ana\nX' }), 400, 'validation_failed', 'name');
    await expectRefused(
      await json({ ...valid, email: 'ana@visitor.example\r\nBcc: victim@example.com' }),
      400,
      'validation_failed',
      'email',
    );
  });

  it('wrong types, invalid email, too long, required', async () => {
    await expectRefused(
      await json({ ...valid, message: { nested: true } }),
      400,
      'validation_failed',
      'message',
    );
    await expectRefused(await json({ ...valid, email: 'not-an-email' }), 400, 'validation_failed', 'email');
    await expectRefused(await json({ ...valid, name: 'x'.repeat(51) }), 400, 'validation_failed', 'name');
    await expectRefused(await json({ email: valid.email }), 400, 'validation_failed', 'name');
    const arr = await submit('contact', '[1,2]', 'application/json', script);
    await expectRefused(arr, 400, 'validation_failed', 'body');
  });

  it('a 10 MB body → 413', async () => {
    const big = urlencoded({ ...valid, message: 'x'.repeat(10 * 1024 * 1024) });
    await expectRefused(
      await submit('contact', big, 'application/x-www-form-urlencoded', script),
      413,
      'payload_too_large',
    );
  });

  it('invalid UTF-8 (urlencoded percent bytes, raw multipart bytes) → 400', async () => {
    await expectRefused(
      await submit(
        'contact',
        'name=%C3%28&email=a%40b.example&message=x',
        'application/x-www-form-urlencoded',
        script,
      ),
      400,
      'validation_failed',
      'name',
    );
    const bad = Buffer.from(
      `--B\r\nContent-Disposition: form-data; name="message"\r\n\r\nbad \xff\xfe bytes\r\n--B--\r\n`,
      'latin1',
    );
    await expectRefused(
      await submit('contact', bad, 'multipart/form-data; boundary=B', script, true),
      400,
      'validation_failed',
      'message',
    );
  });

  it('invalid base64 body (isBase64Encoded) → 400 field body', async () => {
    const ev = formEvent('contact', {
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...script },
      body: 'x',
    });
    ev.body = '!!!not base64!!!';
    ev.isBase64Encoded = true;
    await expectRefused((await h.invoke(ev)) as HttpResult, 400, 'validation_failed', 'body');
  });

  it('a file over maxFileBytes → 413; three files → 400; files on a form without attachments → 400', async () => {
    const big = multipart(Object.entries(valid), [
      {
        field: 'f',
        filename: 'big.bin',
        type: 'application/octet-stream',
        content: Buffer.alloc(100_001, 1),
      },
    ]);
    await expectRefused(
      await submit('contact', big.body, big.contentType, script, true),
      413,
      'payload_too_large',
      'f',
    );
    const three = multipart(
      Object.entries(valid),
      [1, 2, 3].map((i) => ({
        field: 'f',
        filename: `${i}.txt`,
        type: 'text/plain',
        content: Buffer.from('x'),
      })),
    );
    await expectRefused(
      await submit('contact', three.body, three.contentType, script, true),
      400,
      'validation_failed',
      'f',
    );
    const nofiles = multipart(
      [['comment', 'x']],
      [{ field: 'f', filename: 'a.txt', type: 'text/plain', content: Buffer.from('x') }],
    );
    const res = await submit('plain', nofiles.body, nofiles.contentType, script, true);
    expect(res.statusCode).toBe(400);
    expect(bodyOf(res).errors[0]).toMatchObject({ field: 'f', code: 'attachments_not_allowed' });
  });

  it('unsupported content type → 415', async () => {
    await expectRefused(
      await submit('contact', 'hello', 'text/plain', script),
      415,
      'unsupported_media_type',
    );
  });
});
