/**
 * What idempotency costs, on the local stack: the handler in-process, the local mail catcher (STARTTLS + AUTH),
 * the local Secrets Manager endpoint and dynalite (DynamoDB in memory) on 127.0.0.1. Three handlers share them:
 * - `baseline`: no send records table (idempotency off) — the named baseline;
 * - `records, no key`: the table, `POST /send` without a key (the status record only);
 * - `records, key`: the table, `POST /send` with a fresh `Idempotency-Key` each time;
 * and, measured the same way, a `replay` (the key of an earlier request). Requests are interleaved (one of each
 * per round) so load changes hit every variant alike; median of `rounds` each, after a warm-up. DynamoDB calls
 * are counted at the SDK client (middleware), per request.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createHandler, type LambdaHandler } from '../functions/handlers/index.ts';
import { DynamoSendRecords } from '../functions/store/send-records.ts';
import { countingDynamoClient, startLocalDynamoDb } from '../local/dynamodb.ts';
import { matchRoute, toHttpApiEvent } from '../local/http-api-event.ts';
import { createLambdaContext } from '../local/lambda-context.ts';
import { DEV_SMTP_PASSWORD, DEV_SMTP_USER, DEV_TLS, startMailCatcher } from '../local/mail-catcher.ts';
import { startSecretsManagerEndpoint } from '../local/secrets-manager-endpoint.ts';
import { type Summary, summarize } from './stats.ts';

export type IdempotencyVariant = 'baseline' | 'records, no key' | 'records, key' | 'replay';

export interface IdempotencyRow {
  variant: IdempotencyVariant;
  latency: Summary;
  /** Median minus the baseline's median. */
  addedMs: number;
  /** Median over the baseline's median. */
  ratio: number;
  /** DynamoDB calls per request (most frequent count) and which. */
  dynamoCalls: number;
  dynamoOperations: string[];
  failures: string[];
}

export interface IdempotencyBench {
  rounds: number;
  rows: IdempotencyRow[];
}

const TABLE = 'bench-send-records';

function sendEvent(key: string | undefined, n: number) {
  const body = Buffer.from(
    JSON.stringify({ to: 'team@example.com', subject: `Bench ${n}`, text: `Message ${n}\n` }),
  );
  const rawHeaders = ['content-type', 'application/json', 'host', '127.0.0.1:3000'];
  if (key) rawHeaders.push('idempotency-key', key);
  const match = matchRoute('POST', '/send');
  if (!match) throw new Error('no local route for POST /send');
  return toHttpApiEvent(
    {
      method: 'POST',
      url: '/send',
      rawHeaders,
      body,
      sourceIp: '127.0.0.1',
      protocol: 'HTTP/1.1',
      localPort: 3000,
    },
    match,
  );
}

export async function runIdempotencyBench(
  rounds: number,
  log: (s: string) => void,
): Promise<IdempotencyBench> {
  const closers: Array<() => Promise<void>> = [];
  try {
    const catcher = await startMailCatcher({ port: 0, host: '127.0.0.1', limit: 50 });
    closers.push(() => catcher.close());
    const secret = {
      host: '127.0.0.1',
      port: catcher.port,
      security: 'starttls',
      username: DEV_SMTP_USER,
      password: DEV_SMTP_PASSWORD,
      from: 'noreply@example.com',
      clientName: 'localhost',
      ca: readFileSync(DEV_TLS.caPath, 'utf8'),
    };
    const sm = await startSecretsManagerEndpoint({ secrets: { smtp: JSON.stringify(secret) } });
    closers.push(() => sm.close());
    const ddb = await startLocalDynamoDb(TABLE);
    closers.push(() => ddb.close());
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    });
    const env = {
      SMTP_SECRET_ID: 'smtp',
      ENDPOINT_CONFIG: JSON.stringify({ send: { allowedRecipients: ['*@example.com'] } }),
    };
    const client = countingDynamoClient(ddb.url);
    closers.push(async () => client.destroy());
    const records = new DynamoSendRecords({ tableName: TABLE, client });
    const handlers: Record<'baseline' | 'records', LambdaHandler> = {
      baseline: createHandler({ env }),
      records: createHandler({ env, records }),
    };
    for (const h of Object.values(handlers)) closers.push(() => h.close());
    const replayKey = randomUUID();
    const request = async (v: IdempotencyVariant, n: number) => {
      const handler = v === 'baseline' ? handlers.baseline : handlers.records;
      const key = v === 'records, key' ? randomUUID() : v === 'replay' ? replayKey : undefined;
      client.calls.length = 0;
      const t0 = performance.now();
      // A replay repeats one request exactly (same key, same body).
      const event = sendEvent(key, v === 'replay' ? -1 : n);
      const res = (await handler(event, createLambdaContext(30_000))) as { statusCode: number };
      const ms = performance.now() - t0;
      return { ms, status: res.statusCode, calls: [...client.calls] };
    };
    const variants: IdempotencyVariant[] = ['baseline', 'records, no key', 'records, key', 'replay'];
    // Warm-up: JIT, TLS contexts, the SMTP session each handler keeps, dynalite's first writes; the replay key's
    // first (sending) request.
    for (let i = 0; i < 5; i++) for (const v of variants) await request(v, -1);
    const samples = new Map(
      variants.map((v) => [v, { ms: [] as number[], calls: [] as string[][], fail: [] as string[] }]),
    );
    log(`idempotency: ${rounds} rounds of ${variants.join(' / ')}`);
    for (let i = 0; i < rounds; i++) {
      for (const v of variants) {
        const r = await request(v, i);
        const s = samples.get(v)!;
        if (r.status !== 200) s.fail.push(`round ${i}: HTTP ${r.status}`);
        s.ms.push(r.ms);
        s.calls.push(r.calls);
      }
    }
    const base = summarize(samples.get('baseline')!.ms);
    const rows = variants.map((v): IdempotencyRow => {
      const s = samples.get(v)!;
      const latency = summarize(s.ms);
      const typical = mostFrequent(s.calls);
      return {
        variant: v,
        latency,
        addedMs: Number((latency.median - base.median).toFixed(2)),
        ratio: Number((latency.median / base.median).toFixed(3)),
        dynamoCalls: typical.length,
        dynamoOperations: typical,
        failures: s.fail,
      };
    });
    return { rounds, rows };
  } finally {
    for (const c of closers.reverse()) await c().catch(() => {});
  }
}

function mostFrequent(lists: string[][]): string[] {
  const counts = new Map<string, { n: number; list: string[] }>();
  for (const l of lists) {
    const k = l.join(',');
    const e = counts.get(k) ?? { n: 0, list: l };
    e.n++;
    counts.set(k, e);
  }
  return [...counts.values()].sort((a, b) => b.n - a.n)[0]?.list ?? [];
}

export function idempotencyMarkdown(b: IdempotencyBench, fmt: (ms: number) => string): string {
  const head =
    '| variant | median (ms) | p90 (ms) | added vs baseline | ratio | DynamoDB calls per request |';
  const rows = b.rows.map(
    (r) =>
      `| ${r.variant} | ${fmt(r.latency.median)} | ${fmt(r.latency.p90)} | ${r.variant === 'baseline' ? '—' : `${r.addedMs >= 0 ? '+' : ''}${r.addedMs.toFixed(2)} ms`} | ${r.ratio.toFixed(2)} | ${r.dynamoCalls}${r.dynamoCalls ? ` (${r.dynamoOperations.join(', ')})` : ''} |`,
  );
  return [head, '| --- | --- | --- | --- | --- | --- |', ...rows].join('\n');
}
