/**
 * The esbuild ESM bundle (scripts/build.ts, the NodejsFunction settings) loaded with import() and invoked end to
 * end against smtp-server and the local Secrets Manager endpoint: proves the bundle runs (ESM + CJS deps through
 * the createRequire banner: busboy, the AWS SDK) outside the TypeScript toolchain.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLambdaContext } from '../../local/lambda-context.ts';
import {
  type SecretsManagerEndpoint,
  startSecretsManagerEndpoint,
} from '../../local/secrets-manager-endpoint.ts';
import { buildHandler, ROOT } from '../../scripts/build.ts';
import { type DeliveryQueues, messageIdOf, startDeliveryQueues } from '../support/delivery-queues.ts';
import {
  startSmtpServer,
  TEST_CA,
  TEST_PASSWORD,
  TEST_USER,
  type TestSmtpServer,
} from '../support/smtp-server.ts';
import { eventBridgeEvent, formEvent, multipart, sendEvent } from './events.ts';

// biome-ignore lint/suspicious/noExplicitAny: the bundle is untyped JavaScript
type Bundled = { handler: ((e: unknown, c: unknown) => Promise<any>) & { close(): Promise<void> } };

const outdirs = [`dist/test-bundle-${process.pid}`, `dist/test-bundle-sdk-${process.pid}`];
let srv: TestSmtpServer;
let sm: SecretsManagerEndpoint;
let queues: DeliveryQueues;
const loaded: Bundled[] = [];
const sizes: number[] = [];

beforeAll(async () => {
  srv = await startSmtpServer();
  queues = await startDeliveryQueues();
  sm = await startSecretsManagerEndpoint({
    secrets: {
      smtp: {
        host: '127.0.0.1',
        port: srv.port,
        username: TEST_USER,
        password: TEST_PASSWORD,
        from: 'noreply@example.com',
        ca: TEST_CA,
      },
    },
  });
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
    AWS_SECRET_ACCESS_KEY: 'local-test-secret',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
    SMTP_SECRET_ID: 'smtp',
    ...queues.env,
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    ENDPOINT_CONFIG: JSON.stringify({
      send: { allowedRecipients: ['*@example.com'] },
      forms: {
        upload: {
          to: ['team@example.com'],
          subject: 'Upload from {{name}}',
          fields: { name: { required: true } },
          attachments: { maxFiles: 2, maxFileBytes: 10_000 },
        },
      },
    }),
  });
  const main = await buildHandler({ outdir: outdirs[0] });
  const withSdk = await buildHandler({ outdir: outdirs[1], externalAwsSdk: false, metafile: true });
  sizes.push(main.bytes, withSdk.bytes);
  for (const b of [main, withSdk]) loaded.push((await import(pathToFileURL(b.outfile).href)) as Bundled);
}, 120_000);

afterAll(async () => {
  for (const m of loaded) await m.handler.close();
  await sm?.close();
  await queues?.close();
  await srv?.close();
  for (const d of outdirs) rmSync(join(ROOT, d), { recursive: true, force: true });
});

describe('the esbuild bundle', () => {
  it('is minified ESM with a source map and the createRequire banner; the SDK is external by default', () => {
    const main = readFileSync(join(ROOT, outdirs[0]!, 'index.mjs'), 'utf8');
    const full = readFileSync(join(ROOT, outdirs[1]!, 'index.mjs'), 'utf8');
    expect(main.startsWith('import { createRequire as __smtpSendCreateRequire }')).toBe(true);
    // Secrets Manager is our own small client (functions/config/secrets-manager.ts), not the SDK's.
    expect(main).not.toMatch(/@aws-sdk\/client-secrets-manager/);
    expect(full).not.toMatch(/from"@aws-sdk\//);
    expect(main).toMatch(/\/\/# sourceMappingURL=index\.mjs\.map\s*$/);
    // minified: few, very long lines (the entry is a few hundred bytes; the code is in its chunks)
    const code = readdirSync(join(ROOT, outdirs[0]!))
      .filter((f) => f.endsWith('.mjs'))
      .map((f) => readFileSync(join(ROOT, outdirs[0]!, f), 'utf8'))
      .join('\n');
    expect(code.length / code.split('\n').length).toBeGreaterThan(1000);
    // Equal while the handler imports no @aws-sdk package at all; smaller once one is left external.
    expect(sizes[0]).toBeLessThanOrEqual(sizes[1]!);
  });

  it('holds no AWS SDK, even when the SDK may be bundled (esbuild metafile inputs): our own clients instead', () => {
    const meta = JSON.parse(readFileSync(join(ROOT, outdirs[1]!, 'meta.json'), 'utf8')) as {
      inputs: Record<string, unknown>;
    };
    const inputs = Object.keys(meta.inputs);
    // Secrets Manager, DynamoDB, SQS and S3 are our clients over functions/aws/request.ts; Powertools' idempotency
    // core is in, its DynamoDB persistence layer (which imports the SDK) is not.
    for (const ours of [
      'functions/aws/request.ts',
      'functions/store/dynamodb.ts',
      'functions/queue/sqs.ts',
      'functions/queue/s3.ts',
    ]) {
      expect(inputs).toContain(ours);
    }
    expect(inputs.some((i) => i.includes('node_modules/@aws-lambda-powertools/idempotency/'))).toBe(true);
    // Not even behind an import(): a bundled SDK costs import CPU there too (~28 ms measured for S3 + SQS).
    expect(
      inputs.filter((i) => /node_modules\/(@aws-sdk|@smithy)\/|DynamoDBPersistenceLayer/.test(i)),
    ).toEqual([]);
  });

  it('POST /send through the bundle (SDK external)', async () => {
    const res = await loaded[0]!.handler(
      sendEvent({ to: 'alice@example.com', subject: 'From the bundle', text: 'Hi' }),
      createLambdaContext(),
    );
    expect(res.statusCode, res.body).toBe(200);
    const mail = await simpleParser(srv.messages.at(-1)!.raw);
    expect(mail.subject).toBe('From the bundle');
  });

  it('a multipart form upload through the bundle (busboy is CJS)', async () => {
    const { body, contentType } = multipart(
      [['name', 'Bo']],
      [{ field: 'f', filename: 'a.txt', type: 'text/plain', content: Buffer.from('file body') }],
    );
    const res = await loaded[0]!.handler(
      formEvent('upload', { headers: { 'content-type': contentType, accept: 'application/json' }, body }),
      createLambdaContext(),
    );
    expect(res.statusCode, res.body).toBe(200);
    const mail = await simpleParser(srv.messages.at(-1)!.raw);
    expect(mail.subject).toBe('Upload from Bo');
    expect(mail.attachments[0]?.content.toString()).toBe('file body');
  });

  it('EventBridge and direct invoke through the bundle with the AWS SDK bundled in', async () => {
    const h = loaded[1]!.handler;
    const eb = await h(
      eventBridgeEvent({ to: 'ops@example.com', subject: 'EB bundle', text: 'x' }),
      createLambdaContext(),
    );
    expect(eb).toMatchObject({ ok: true, accepted: ['ops@example.com'] });
    // A failed direct invoke throws (so an asynchronous invoke is retried, then dead-lettered), named by its code.
    await expect(h({ to: 'ops@example.com', subject: 42 }, createLambdaContext())).rejects.toMatchObject({
      name: 'validation_failed',
    });
    expect((await simpleParser(srv.messages.at(-1)!.raw)).subject).toBe('EB bundle');
  });

  it('the delivery queue through the bundle: /send respond-async → 202, then the SQS batch is delivered', async () => {
    const h = loaded[0]!.handler;
    const res = await h(
      sendEvent(
        { to: 'queue@example.com', subject: 'Queued in the bundle', text: 'x' },
        { prefer: 'respond-async' },
      ),
      createLambdaContext(),
    );
    expect(res.statusCode, res.body).toBe(202);
    const { messageId } = JSON.parse(res.body) as { messageId: string };
    // The event exactly as Lambda's SQS event source mapping hands it over.
    const event = await queues.receiveEvent();
    expect(event.Records).toHaveLength(1);
    expect(await h(event, createLambdaContext())).toEqual({ batchItemFailures: [] });
    const arrived = srv.messages.filter((m) => messageIdOf(m.raw) === messageId);
    expect(arrived).toHaveLength(1);
    expect(arrived[0]!.envelope.to).toEqual(['queue@example.com']);
  });
});
