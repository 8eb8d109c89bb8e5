/**
 * `npm run bench -- --queue`: queued delivery.
 *
 * A. Form post response time (p50/p99) at concurrency 20 on the local stack (`startLocal`: HTTP API events → the
 *    handler → the local SQS endpoint → the event source mapping), with 25 ms one-way latency between the function
 *    and its SMTP server (bench/proxy.ts in front of the mail catcher), in `sync`, `sync-then-queue` and `queue`
 *    mode. Each mode runs in its own process (the local stack is one per process). Baseline: `sync`.
 * B. Delivery throughput from the queue (msgs/s) over ONE connection with CHUNKING (Exim, 25 ms one-way through
 *    the lab's proxy): the queue consumer (event source mapping, one batch slot, batches of 25 and of the default
 *    size) vs nodemailer's pool (`pool: true`, its defaults: 5 connections) on the same messages, nodemailer's pool
 *    on 1 connection, and the ceiling of one connection to this server (every message in one warm write). 100 and
 *    500 messages: a run of 100 is dominated by the set-up; 500 shows the rate a busy queue drains at. Each row
 *    says its SMTP round trips (counted by the proxy), connections, batches and SQS calls.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import nodemailer from 'nodemailer';
import { DEFAULT_DELIVERY } from '../functions/config/endpoint.ts';
import { SqsDeliveryQueue } from '../functions/queue/sqs-delivery-queue.ts';
import { SmtpClient } from '../functions/smtp/index.ts';
import { DynamoSendRecords } from '../functions/store/send-records.ts';
import { countingDynamoClient, startLocalDynamoDb } from '../local/dynamodb.ts';
import { startEventSourceMapping } from '../local/event-source-mapping.ts';
import { startSecretsManagerEndpoint } from '../local/secrets-manager-endpoint.ts';
import { startSqsEndpoint } from '../local/sqs-endpoint.ts';
import { startLab } from './lab.ts';
import { type BenchMessage, benchMessage } from './message.ts';
import { BENCH_AUTH, TLS_MATERIAL } from './peers.ts';
import { startLatencyProxy } from './proxy.ts';
import { quantile } from './stats.ts';

const ONE_WAY_MS = 25;
const MODES = ['sync', 'sync-then-queue', 'queue'] as const;
type Mode = (typeof MODES)[number];

export interface FormRow {
  mode: Mode;
  posts: number;
  latency: { p50: number; p99: number; max: number };
  /** From the first post until every message had arrived at the mail catcher. */
  allDeliveredMs: number;
}

export interface ThroughputRow {
  client: string;
  messages: number;
  ms: number;
  perSecond: number;
  /** SMTP round trips the proxy saw (TCP handshake + every server flight, all connections). */
  smtpRoundTrips?: number;
  connections?: number;
  /** The queue consumer: invocations (batches), the first (cold) and the median later batch's handler time. */
  batches?: number;
  firstBatchMs?: number | undefined;
  warmBatchMs?: number | undefined;
  /** SQS API calls during the run, by operation (the enqueueing before it is not counted). */
  sqsCalls?: Record<string, number>;
  /** DynamoDB calls of the send records, by operation (with the records only). */
  dynamoCalls?: Record<string, number>;
}

const until = async (check: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** A: one mode, in this process (`--form-child MODE POSTS`); prints the row as JSON. */
async function formChild(mode: Mode, posts: number): Promise<FormRow> {
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  const { startLocal } = await import('../local/server.ts');
  const dir = mkdtempSync(join(tmpdir(), 'bench-queue-'));
  const config = JSON.parse(
    readFileSync(fileURLToPath(new URL('../config/endpoint.json', import.meta.url)), 'utf8'),
  ) as { forms: Record<string, Record<string, unknown>> };
  config.forms.contact!.delivery = mode;
  writeFileSync(join(dir, 'endpoint.json'), JSON.stringify(config));
  const stack = await startLocal({
    port: 0,
    smtpPort: 0,
    inboxLimit: 10_000,
    configFile: join(dir, 'endpoint.json'),
  });
  const proxy = await startLatencyProxy(stack.catcher!.port, ONE_WAY_MS);
  try {
    // The function's secret points at the proxy in front of the catcher (read lazily, at the first send).
    const sm = new SecretsManagerClient({
      endpoint: stack.secretsManagerUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const id = 'local/smtp-send-endpoint/smtp';
    const secret = JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: id }))).SecretString!);
    await sm.send(
      new PutSecretValueCommand({
        SecretId: id,
        SecretString: JSON.stringify({ ...secret, port: proxy.port }),
      }),
    );
    const post = async (i: number) => {
      const started = performance.now();
      const res = await fetch(`${stack.url}/forms/contact`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: stack.url, accept: 'application/json' },
        body: JSON.stringify({ name: `Bench ${i}`, email: `b${i}@example.org`, message: 'Benchmark post' }),
      });
      await res.text();
      if (res.status !== 200 && res.status !== 202) throw new Error(`post ${i}: HTTP ${res.status}`);
      return performance.now() - started;
    };
    for (let i = 0; i < 3; i++) await post(-1 - i); // warm: secret read, first session
    await until(() => stack.catcher!.store.list().length >= 3, 30_000, 'the warm-up arrivals');
    const samples: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < posts) samples.push(await post(next++));
      }),
    );
    await until(() => stack.catcher!.store.list().length >= posts + 3, 120_000, 'every arrival');
    const latency = { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), max: Math.max(...samples) };
    return { mode, posts, latency, allDeliveredMs: performance.now() - t0 };
  } finally {
    await proxy.close();
    await stack.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function runFormChild(mode: Mode, posts: number): Promise<FormRow> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--form-child', mode, String(posts)],
      { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const line = stdout.split('\n').find((l) => l.startsWith('{"mode"'));
        if (err || !line)
          return reject(new Error(`form bench ${mode} failed: ${err?.message ?? ''} ${stderr.slice(-2000)}`));
        resolve(JSON.parse(line) as FormRow);
      },
    );
  });
}

/** B: the queue consumer over one connection vs nodemailer's pool, against Exim at 25 ms one-way. */
export async function throughput(sizes: number[]): Promise<ThroughputRow[]> {
  const lab = await startLab({ withSmtpServerTls: false });
  const rows: ThroughputRow[] = [];
  try {
    const peer = lab.peers.find((p) => p.id === '587-chunking')!;
    await lab.setDelay(peer.id, ONE_WAY_MS);
    const counted = async (run: () => Promise<ThroughputRow>) => {
      await lab.reset(peer.id);
      const row = await run();
      const stats = await lab.snapshot(peer.id);
      return { ...row, smtpRoundTrips: stats.roundTrips, connections: stats.connections.length };
    };
    for (const [k, n] of sizes.entries()) {
      const msgs = Array.from({ length: n }, (_, i) => benchMessage(k * 100_000 + i));
      for (const batchSize of BATCH_SIZES)
        rows.push(await counted(() => ourQueue(peer.proxyPort, msgs, batchSize)));
      rows.push(await counted(() => nodemailerPool(peer.proxyPort, msgs, undefined)));
      if (k === 0) rows.push(await counted(() => nodemailerPool(peer.proxyPort, msgs, 1)));
      rows.push(await counted(() => oneWarmWrite(peer.proxyPort, msgs)));
      // Not the goal's one connection: what the deployed default (maxConnections 2, Lambda's minimum) does.
      if (n >= 2 * DEFAULT_DELIVERY.batchSize) {
        rows.push(await counted(() => ourQueue(peer.proxyPort, msgs, DEFAULT_DELIVERY.batchSize, 2)));
        // As deployed, the consumer also writes the send records: what they add per batch.
        rows.push(await counted(() => ourQueue(peer.proxyPort, msgs, DEFAULT_DELIVERY.batchSize, 1, true)));
      }
    }
  } finally {
    await lab.close();
  }
  return rows;
}

/** Today's default batch size and the deployed mapping's earlier one, to show what the batch size buys. */
const BATCH_SIZES = [...new Set([25, DEFAULT_DELIVERY.batchSize])];

const RECORDS_TABLE = 'bench-send-records';

const countBy = (names: string[]) =>
  names.reduce<Record<string, number>>((m, n) => Object.assign(m, { [n]: (m[n] ?? 0) + 1 }), {});

const SMTP_SECRET = (port: number) => ({
  host: '127.0.0.1',
  port,
  security: 'starttls' as const,
  username: BENCH_AUTH.username,
  password: BENCH_AUTH.password,
  from: 'noreply@example.com',
  clientName: 'localhost',
  ca: TLS_MATERIAL.ca,
});

/**
 * The queue consumer, cold (a new handler: secret read, connection set-up included) with ONE batch slot: the time
 * from the first poll until the queue is empty (SQS receive/delete by the event source mapping included).
 */
async function ourQueue(
  port: number,
  msgs: BenchMessage[],
  batchSize: number,
  slots = 1,
  withRecords = false,
): Promise<ThroughputRow> {
  const sqs = await startSqsEndpoint();
  const sm = await startSecretsManagerEndpoint({ secrets: { smtp: SMTP_SECRET(port) } });
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_ENDPOINT_URL_SQS: sqs.url,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
    POWERTOOLS_LOG_LEVEL: 'ERROR',
  });
  const queueUrl = sqs.createQueue('bench-delivery', { VisibilityTimeout: '60' });
  const { createHandler } = await import('../functions/handlers/index.ts');
  // The deployed consumer has the send records table (a claim per message, the marker before its end of data).
  const ddb = withRecords ? await startLocalDynamoDb(RECORDS_TABLE) : undefined;
  const dynamo = ddb ? countingDynamoClient(ddb.url) : undefined;
  const records = dynamo ? new DynamoSendRecords({ tableName: RECORDS_TABLE, client: dynamo }) : undefined;
  // One handler per batch slot: Lambda runs each concurrent batch in its own environment (its own session).
  const handlers: Array<ReturnType<typeof createHandler>> = [];
  const newHandler = () => {
    const h = createHandler({
      ...(records ? { records } : {}),
      env: { ...process.env, SMTP_SECRET_ID: 'smtp', DELIVERY_QUEUE_URL: queueUrl, ENDPOINT_CONFIG: '{}' },
    });
    handlers.push(h);
    return h;
  };
  const queue = new SqsDeliveryQueue({ queueUrl });
  for (const [i, m] of msgs.entries()) {
    await queue.enqueue({
      messageId: `<bench-${i}@example.com>`,
      envelope: m.envelope,
      content: m.content,
      eightBit: false,
      smtpUtf8: false,
      reason: 'queued',
      origin: 'direct_invoke',
      queuedAt: Date.now(),
    });
  }
  sqs.calls.clear();
  const batchMs: number[] = [];
  const timed = () => {
    const handler = newHandler();
    return async (event: unknown, context: Context) => {
      const started = performance.now();
      try {
        return await handler(event, context);
      } finally {
        batchMs.push(performance.now() - started);
      }
    };
  };
  const t0 = performance.now();
  const client = new SQSClient({ endpoint: sqs.url, region: 'us-east-1' });
  const esm = startEventSourceMapping({
    sqs: client,
    queueUrl,
    queueArn: sqs.arnOf('bench-delivery'),
    handler: timed,
    maxConcurrency: slots,
    batchSize,
    batchingWindowMs: 50,
  });
  try {
    await until(() => sqs.messages('bench-delivery').length === 0, 120_000, 'the queue to drain');
    const ms = performance.now() - t0;
    return {
      client:
        (slots === 1
          ? `ours: queue consumer, 1 connection, batches of ${batchSize}${batchSize === DEFAULT_DELIVERY.batchSize ? ' (default)' : ''}`
          : `ours: ${slots} batch slots (the deployed minimum), batches of ${batchSize}`) +
        (records ? ', with the send records (dynalite)' : ''),
      messages: msgs.length,
      ms,
      perSecond: (msgs.length * 1000) / ms,
      batches: esm.invocations,
      firstBatchMs: batchMs[0],
      warmBatchMs: batchMs.length > 1 ? quantile(batchMs.slice(1), 0.5) : undefined,
      sqsCalls: Object.fromEntries(sqs.calls),
      ...(dynamo ? { dynamoCalls: countBy(dynamo.calls) } : {}),
    };
  } finally {
    await esm.stop();
    client.destroy();
    for (const h of handlers) await h.close();
    dynamo?.destroy();
    await ddb?.close();
    await sm.close();
    await sqs.close();
  }
}

/**
 * What one connection to this server can carry at all: our client on a warm session writes every message in one
 * pipelined write (no queue, no SQS) and waits for the last reply. Nothing over one connection can be faster.
 */
async function oneWarmWrite(port: number, msgs: BenchMessage[]): Promise<ThroughputRow> {
  const { username, password, ...rest } = SMTP_SECRET(port);
  const client = new SmtpClient({ ...rest, auth: { username, password } });
  try {
    await client.sendBatch([benchMessage(-1)]);
    const t0 = performance.now();
    const out = await client.sendBatch(msgs.map((m) => ({ envelope: m.envelope, content: m.content })));
    const ms = performance.now() - t0;
    const failed = out.results.filter((r) => !r.ok).length;
    if (failed > 0) throw new Error(`one warm write: ${failed} message(s) failed`);
    return {
      client: 'ceiling: one warm connection, every message in one write (ours, no queue)',
      messages: msgs.length,
      ms,
      perSecond: (msgs.length * 1000) / ms,
    };
  } finally {
    await client.close();
  }
}

async function nodemailerPool(
  port: number,
  msgs: BenchMessage[],
  maxConnections: number | undefined,
): Promise<ThroughputRow> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    name: 'localhost',
    tls: { ca: TLS_MATERIAL.ca, servername: 'localhost' },
    auth: { user: BENCH_AUTH.username, pass: BENCH_AUTH.password },
    pool: true,
    ...(maxConnections ? { maxConnections } : {}),
  });
  const t0 = performance.now();
  try {
    await Promise.all(
      msgs.map((m) => transport.sendMail({ envelope: m.envelope, raw: Buffer.from(m.content) })),
    );
  } finally {
    transport.close();
  }
  const ms = performance.now() - t0;
  const label = maxConnections
    ? `nodemailer pool, ${maxConnections} connection`
    : 'nodemailer pool (defaults: 5 connections)';
  return { client: label, messages: msgs.length, ms, perSecond: (msgs.length * 1000) / ms };
}

export async function runQueueBench(
  quick: boolean,
): Promise<{ forms: FormRow[]; throughput: ThroughputRow[] }> {
  const forms: FormRow[] = [];
  for (const mode of MODES) forms.push(await runFormChild(mode, quick ? 60 : 200));
  return { forms, throughput: await throughput(quick ? [50] : [100, 500]) };
}

if (process.argv[2] === '--form-child') {
  const row = await formChild(process.argv[3] as Mode, Number(process.argv[4]));
  process.stdout.write(`${JSON.stringify(row)}\n`);
  process.exit(0);
}
