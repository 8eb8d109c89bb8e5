/**
 * What only some requests use, through the BUNDLED handler (scripts/build.ts, code-split as deployed): the CAPTCHA
 * check, the send records store and the SQS records' code (the dead-letter redrive) are chunks loaded at their first
 * use. Each is first asked for with its chunk file moved away — the request gets that feature's typed failure
 * (503 `captcha_unavailable`, 503 `idempotency_unavailable`; the SQS batch thrown back whole), never an internal
 * error, and nothing is sent — then with the file back: the next request loads it and is served.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLambdaContext } from '../../local/lambda-context.ts';
import {
  type SecretsManagerEndpoint,
  startSecretsManagerEndpoint,
} from '../../local/secrets-manager-endpoint.ts';
import { buildHandler, ROOT } from '../../scripts/build.ts';
import { type CaptchaEndpoint, startCaptchaEndpoint } from '../support/captcha-endpoint.ts';
import { type DynamoEndpoint, startDynalite } from '../support/dynamodb.ts';
import {
  startSmtpServer,
  TEST_CA,
  TEST_PASSWORD,
  TEST_USER,
  type TestSmtpServer,
} from '../support/smtp-server.ts';
import {
  destinationRecord,
  eventBridgeEvent,
  formEvent,
  httpEvent,
  sendEvent,
  sqsEvent,
  sqsRecord,
} from './events.ts';

// biome-ignore lint/suspicious/noExplicitAny: the bundle is untyped JavaScript
type Handler = ((e: unknown, c: unknown) => Promise<any>) & { close(): Promise<void> };
type Bundle = { createHandler(opts: { env: Record<string, string> }): Handler };

const outdir = join(ROOT, `dist/test-bundle-lazy-${process.pid}`);
let smtp: TestSmtpServer;
let sm: SecretsManagerEndpoint;
let captcha: CaptchaEndpoint;
let ddb: DynamoEndpoint;
let bundle: Bundle;
const handlers: Handler[] = [];

beforeAll(async () => {
  [smtp, sm, ddb] = await Promise.all([startSmtpServer(), startSecretsManagerEndpoint(), startDynalite()]);
  await ddb.createTable('send-records');
  captcha = await startCaptchaEndpoint({
    secret: 'turnstile-secret',
    validTokens: ['good-token'],
    hostname: 'site.example.com',
  });
  sm.setSecret('smtp', {
    host: '127.0.0.1',
    port: smtp.port,
    username: TEST_USER,
    password: TEST_PASSWORD,
    ca: TEST_CA,
    from: 'noreply@example.com',
  });
  sm.setSecret('captcha-secret', { secret: 'turnstile-secret' });
  // The Secrets Manager client reads region, credentials and endpoint from process.env; SMTP_SECRET_ID is each
  // handler's own (the bundle's instance runtime, prewarmed at import, has none and loads nothing lazy).
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
    AWS_SECRET_ACCESS_KEY: 'local-test-secret',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  });
  const built = await buildHandler({ outdir });
  bundle = (await import(pathToFileURL(built.outfile).href)) as Bundle;
}, 120_000);

afterAll(async () => {
  for (const h of handlers) await h.close();
  await Promise.all([smtp?.close(), sm?.close(), captcha?.close(), ddb?.close()]);
  rmSync(outdir, { recursive: true, force: true });
});

function handlerWith(records?: 'records'): Handler {
  const h = bundle.createHandler({
    env: {
      ...(records ? { IDEMPOTENCY_TABLE_NAME: 'send-records', AWS_ENDPOINT_URL_DYNAMODB: ddb.url } : {}),
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
      AWS_SECRET_ACCESS_KEY: 'local-test-secret',
      SMTP_SECRET_ID: 'smtp',
      SECRET_TTL_SECONDS: '0',
      SMTP_REUSE: 'false',
      ENDPOINT_CONFIG: JSON.stringify({
        send: { allowedRecipients: ['*@example.com'], allowedSenders: ['noreply@example.com'] },
        forms: {
          contact: {
            to: ['team@example.com'],
            subject: 'Contact',
            fields: { message: { required: true } },
            allowedOrigins: ['https://site.example.com'],
            captcha: { provider: 'turnstile', secretId: 'captcha-secret', verifyUrl: captcha.url },
          },
        },
      }),
    },
  });
  handlers.push(h);
  return h;
}

/** The one chunk file that holds `marker`, moved away until `restore()` (the bundle's other files stay). */
function hideChunkWith(marker: string): { restore(): void } {
  const holding = readdirSync(outdir).filter(
    (f) => f.endsWith('.mjs') && readFileSync(join(outdir, f), 'utf8').includes(marker),
  );
  expect(holding, marker).toHaveLength(1);
  expect(holding[0]).toMatch(/^chunk-/);
  const file = join(outdir, holding[0]!);
  renameSync(file, `${file}.away`);
  return {
    restore: () => {
      renameSync(`${file}.away`, file);
      expect(existsSync(file)).toBe(true);
    },
  };
}

const arrivedWith = (srv: TestSmtpServer, subject: string) =>
  srv.messages.filter((m) => m.raw.toString('utf8').includes(`Subject: ${subject}`));

const formPost = (h: Handler, message: string, token: string) =>
  h(
    formEvent('contact', {
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        origin: 'https://site.example.com',
      },
      body: new URLSearchParams({ message, 'cf-turnstile-response': token }).toString(),
    }),
    createLambdaContext(),
  );

describe('features loaded at first use, through the bundle', () => {
  it('CAPTCHA: its chunk missing → 503 captcha_unavailable, nothing verified or sent; back → verified and sent', async () => {
    const h = handlerWith();
    const hidden = hideChunkWith('the CAPTCHA was not accepted');
    const before = smtp.messages.length;
    const failed = await formPost(h, 'while the check is away', 'good-token');
    expect(failed.statusCode, failed.body).toBe(503);
    expect(JSON.parse(failed.body)).toMatchObject({ code: 'captcha_unavailable' });
    expect(failed.headers['retry-after']).toBe('10');
    expect(captcha.requests).toHaveLength(0);
    expect(smtp.messages.length).toBe(before);
    hidden.restore();
    const bad = await formPost(h, 'a forged token', 'forged');
    expect(bad.statusCode, bad.body).toBe(403);
    expect(JSON.parse(bad.body)).toMatchObject({ code: 'captcha_failed' });
    const ok = await formPost(h, 'with the check back', 'good-token');
    expect(ok.statusCode, ok.body).toBe(200);
    expect(captcha.requests.map((r) => r.response)).toEqual(['forged', 'good-token']);
    expect(smtp.messages.length).toBe(before + 1);
  });

  it('the send records: their chunk missing → 503 idempotency_unavailable, nothing sent; back → sent once, then replayed', async () => {
    const h = handlerWith('records');
    const hidden = hideChunkWith('JMESPath');
    const key = randomUUID();
    const send = (subject: string, headers: Record<string, string> = { 'idempotency-key': key }) =>
      h(sendEvent({ to: 'team@example.com', subject, text: 'once' }, headers), createLambdaContext());
    const failed = await send('records away');
    expect(failed.statusCode, failed.body).toBe(503);
    expect(JSON.parse(failed.body)).toMatchObject({ code: 'idempotency_unavailable' });
    // Without a key the status record is still kept: the marker before the final dot cannot be written, so the
    // message is not sent either; an invalid request is answered as one (no unobserved failure of the load).
    const unkeyed = await send('records away, no key', {});
    expect(unkeyed.statusCode, unkeyed.body).toBe(503);
    expect(JSON.parse(unkeyed.body)).toMatchObject({ code: 'idempotency_unavailable' });
    const invalid = await h(sendEvent({ to: 'team@example.com', subject: 42 }), createLambdaContext());
    expect(invalid.statusCode, invalid.body).toBe(400);
    const status = await h(
      httpEvent({ method: 'GET', path: `/messages/${encodeURIComponent('<x@example.com>')}`, iam: true }),
      createLambdaContext(),
    );
    expect(status.statusCode, status.body).toBe(503);
    expect(arrivedWith(smtp, 'records away')).toHaveLength(0);
    hidden.restore();
    const sent = await send('records back');
    expect(sent.statusCode, sent.body).toBe(200);
    const replayed = await send('records back');
    expect(replayed.statusCode, replayed.body).toBe(200);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(arrivedWith(smtp, 'records back')).toHaveLength(1);
  });

  it('SQS redrive: its chunk missing → the batch is thrown back whole, nothing sent; back → redriven once', async () => {
    const h = handlerWith();
    const hidden = hideChunkWith('redrive_malformed_body');
    const detail = { to: 'ops@example.com', subject: 'redriven lazily', text: 'x' };
    const event = sqsEvent(sqsRecord(JSON.stringify(destinationRecord(eventBridgeEvent(detail)))));
    await expect(h(event, createLambdaContext())).rejects.toThrow();
    expect(arrivedWith(smtp, 'redriven lazily')).toHaveLength(0);
    hidden.restore();
    expect(await h(event, createLambdaContext())).toEqual({ batchItemFailures: [] });
    expect(arrivedWith(smtp, 'redriven lazily')).toHaveLength(1);
  });
});
