/**
 * Cold start at Lambda's CPU share. For each memory size, each handler bundle (SDK bundled, as deployed) and each
 * kind of first request, fresh `node` processes run under the CPU quota of that memory size (./cpu-cap.ts): the
 * process imports the bundle (init) and serves one request (first request) — a direct invoke, an urlencoded form
 * post or a multipart form post — against smtp-server behind the latency proxy (25 ms one-way, in the lab
 * process) and the local Secrets Manager endpoint. Reported: medians of wall time (process start → first
 * response, init, first request) and of the child's CPU time, per cell; the cap used and how often it throttled.
 *
 * Handlers (./bundle.ts): `ours` (this tree), `twin` (the frozen nodemailer baseline), `before` (the frozen
 * handler unswapped: ours before the cold-start cuts). Runs interleave every cell, run by run, so drift in
 * machine load hits all of them alike; compare ratios within one run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import { startLocalDynamoDb } from '../local/dynamodb.ts';
import { startSecretsManagerEndpoint } from '../local/secrets-manager-endpoint.ts';
import {
  atRevision,
  type BundleInfo,
  buildCore,
  buildHandler,
  OUT_DIR,
  REPO,
  type Variant,
} from './bundle.ts';
import { COLD_ENDPOINT_CONFIG, coldEvent, REQUEST_KINDS, type RequestKind } from './cold-requests.ts';
import { type CapMechanism, type CpuCap, openCpuCap } from './cpu-cap.ts';
import { startLab } from './lab.ts';
import { BENCH_FROM } from './message.ts';
import { BENCH_AUTH, TLS_MATERIAL } from './peers.ts';
import { mode, type Summary, summarize } from './stats.ts';

export interface ColdStartGoal {
  goal: string;
  target: string;
  measured: string;
  met: boolean | null;
}

/** One fresh process, as the child reports it (ms since its own process start) plus the parent's wall time. */
export interface ColdStartRun {
  wallMs: number;
  /** Process start → first response (performance.now() in the child at the response). */
  totalMs: number;
  /** Process start → our script's first line (bare Node start, the same for every bundle). */
  nodeStartMs: number;
  /** import() of the bundle: Lambda's init of the handler module. */
  importMs: number;
  firstRequestMs: number;
  cpuNodeStartMs: number;
  cpuImportMs: number;
  cpuFirstRequestMs: number;
  /** Warm requests after the first (same event), ms each. */
  warmMs: number[];
  /** SMTP connections the process opened (seen by the latency proxy): 1 when a connection opened ahead was used. */
  smtpConnections: number;
}

export interface ColdStartCell {
  memoryMb: number;
  variant: Variant;
  request: RequestKind;
  runs: number;
  failures: string[];
  total: Summary;
  nodeStart: Summary;
  import: Summary;
  firstRequest: Summary;
  cpuImport: Summary;
  cpuFirstRequest: Summary;
  wall: Summary;
  /** SMTP connections per process (the most frequent count). */
  smtpConnections: number;
}

/** Warm urlencoded form posts: the same process after its first request (100 ms apart). */
export interface WarmCell {
  memoryMb: number;
  variant: Variant;
  processes: number;
  failures: string[];
  latency: Summary;
}

export interface CapReport {
  memoryMb: number;
  mechanism: CapMechanism;
  quotaUs: number;
  periodUs: number;
  share: number;
  periods: number;
  throttledPeriods: number;
  throttledMs: number;
}

export interface ColdStartOptions {
  /** Fresh processes per cell (≥ 15 for reported figures). */
  runs: number;
  memorySizes: number[];
  variants: Variant[];
  requests?: readonly RequestKind[];
  /** Warm urlencoded form posts after the first one, in `processes` extra processes per variant and memory size. */
  warm?: { memorySizes: number[]; processes: number; requests: number };
  /** Bundle sizes of the SDK-external builds and the SMTP + MIME cores too. */
  sizes?: boolean;
  /**
   * With the send records table, as the construct deploys it by default (`IDEMPOTENCY_TABLE_NAME`; dynalite behind
   * a TLS front): a form post claims its fingerprint, a direct invoke writes its status. The frozen handlers
   * predate idempotency and ignore it.
   */
  records?: boolean;
  oneWayMs?: number;
  /** Where bundles go (inside the repo); default dist/bench. The quick test uses its own, so a bench can run alongside. */
  outDir?: string;
  log?: (line: string) => void;
}

export interface ColdStartResult {
  mechanism: CapMechanism;
  caps: CapReport[];
  sizes: Record<string, BundleInfo>;
  cells: ColdStartCell[];
  warm: WarmCell[];
  /** Variants that ran with the configuration's `smtp` server hint (they connect while the secret loads). */
  hinted: Variant[];
  /** Whether the children had the send records table. */
  records: boolean;
  runs: number;
  oneWayMs: number;
  loadAverage: { start: number[]; end: number[] };
}

/** Child: import the bundle, serve the event, print one marker line; then optional warm requests. */
const CHILD = `
const t0 = performance.now();
const c0 = process.cpuUsage();
const ms = (c) => (c.user + c.system) / 1000;
const mod = await import(process.argv[2]);
const t1 = performance.now();
const c1 = process.cpuUsage();
const memory = process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
// One event and one request id per request (a new submission each: see coldEvent's nonce).
const events = JSON.parse(process.env.BENCH_EVENTS);
const contextOf = (i) => ({
  awsRequestId: 'bench-' + process.env.BENCH_NONCE + '.' + i, functionName: 'bench', functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:bench', memoryLimitInMB: memory,
  logGroupName: '/aws/lambda/bench', logStreamName: 'bench', callbackWaitsForEmptyEventLoop: false,
  getRemainingTimeInMillis: () => 30000,
});
const okOf = (res) => {
  if (res && typeof res.statusCode === 'number') {
    if (res.statusCode !== 200) return 'HTTP ' + res.statusCode + ' ' + String(res.body).slice(0, 300);
    return JSON.parse(res.body).ok === true ? '' : String(res.body).slice(0, 300);
  }
  return res && res.ok === true ? '' : JSON.stringify(res).slice(0, 300);
};
let error = '';
// As the Lambda runtime does after init: it schedules its first iteration with setImmediate and then fetches the
// event over HTTP from the runtime API (aws-lambda-nodejs-runtime-interface-client, Runtime.scheduleIteration), so
// the handler never runs in the same event-loop turn as the end of init. One turn is the least it takes.
await new Promise((resolve) => setImmediate(resolve));
try { error = okOf(await mod.handler(events[0], contextOf(0))); } catch (e) { error = String(e && e.message || e).slice(0, 300); }
const t2 = performance.now();
const c2 = process.cpuUsage();
const warmMs = [];
for (let i = 0; !error && i < Number(process.env.BENCH_WARM || 0); i++) {
  await new Promise((r) => setTimeout(r, 100));
  const w0 = performance.now();
  error = okOf(await mod.handler(events[i + 1], contextOf(i + 1)));
  warmMs.push(performance.now() - w0);
}
const cgroup = (await import('node:fs')).readFileSync('/proc/self/cgroup', 'utf8');
process.stdout.write('\\nBENCH_RESULT ' + JSON.stringify({ error, cgroup, warmMs,
  nodeStartMs: t0, importMs: t1 - t0, firstRequestMs: t2 - t1, totalMs: t2,
  cpuNodeStartMs: ms(c0), cpuImportMs: ms(c1) - ms(c0), cpuFirstRequestMs: ms(c2) - ms(c1) }) + '\\n');
await mod.handler.close?.();
process.exit(0);
`;

function runChild(
  cap: CpuCap,
  bundle: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<ColdStartRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const [cmd, args] = cap.wrap([process.execPath, join(dirname(bundle), '..', 'invoke.mjs'), bundle]);
    const child = spawn(cmd, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let result: ColdStartRun | undefined;
    let failure: Error | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      failure ??= new Error(`no response within ${timeoutMs} ms`);
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /\nBENCH_RESULT (\{.*\})\n/.exec(out);
      if (!m || result || failure) return;
      const r = JSON.parse(m[1]!) as { error: string; cgroup: string } & Omit<ColdStartRun, 'wallMs'>;
      const { error, cgroup, ...times } = r;
      try {
        cap.verify(cgroup);
        if (error) throw new Error(`request failed: ${error}`);
        result = { wallMs: performance.now() - started, ...times, smtpConnections: 0 };
      } catch (e) {
        failure = e as Error;
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', (e) => {
      failure ??= e;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (result) resolve(result);
      else reject(failure ?? new Error(`child exited (${code}) without a result: ${err.trim().slice(-300)}`));
    });
  });
}

/** What every child of one run shares: the output dir, the Secrets Manager endpoint, the SMTP server (proxy). */
interface ChildSetup {
  dir: string;
  smUrl: string;
  secretId: string;
  smtpPort: number;
  /** The send records table's DynamoDB endpoint (TLS front), when `records`. */
  dynamoDbUrl?: string;
  /** Variants whose configuration schema has the `smtp` server hint (the frozen ones do not: strict schema). */
  hinted: Set<Variant>;
}

/** Does `variant`'s source know the endpoint configuration's `smtp` section (connect while the secret loads)? */
function knowsSmtpHint(variant: Variant): boolean {
  const rev = atRevision(variant);
  if (variant !== 'ours' && variant !== 'single' && !rev) return false;
  const file = 'functions/config/endpoint.ts';
  const src = rev
    ? execFileSync('git', ['show', `${rev}:${file}`], { cwd: REPO, encoding: 'utf8' })
    : readFileSync(join(REPO, file), 'utf8');
  return src.includes('smtp: v.optional(SmtpServerSchema)');
}

/**
 * HTTPS in front of the local Secrets Manager endpoint (which speaks plain HTTP): the first request pays the TLS
 * handshake to Secrets Manager as on Lambda (certs/dev, trusted by the child through NODE_EXTRA_CA_CERTS).
 */
async function startTlsFront(port: number): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ key: TLS_MATERIAL.key, cert: TLS_MATERIAL.cert }, (client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    url: `https://localhost:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const BENCH_TABLE = 'bench-send-records';
let childSeq = 0;

function childEnv(setup: ChildSetup, variant: Variant, memoryMb: number, kind: RequestKind, warm: number) {
  const { dir, smUrl, secretId } = setup;
  const config = setup.hinted.has(variant)
    ? {
        ...COLD_ENDPOINT_CONFIG,
        smtp: { host: '127.0.0.1', port: setup.smtpPort, security: 'starttls', clientName: 'example.com' },
      }
    : COLD_ENDPOINT_CONFIG;
  const home = join(dir, 'home');
  mkdirSync(home, { recursive: true });
  const nonce = `${process.pid.toString(36)}-${(childSeq++).toString(36)}`;
  return {
    PATH: process.env.PATH,
    // No ~/.aws here (as on Lambda): the default provider chains find nothing to read but the environment.
    HOME: home,
    TZ: ':UTC',
    NODE_ENV: 'production',
    NODE_EXTRA_CA_CERTS: join(REPO, 'certs/dev/ca.pem'),
    // What Lambda sets (credentials of the execution role, region, function facts).
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'ASIABENCHCOLDSTART00',
    AWS_SECRET_ACCESS_KEY: 'bench-secret-access-key',
    AWS_SESSION_TOKEN: 'bench-session-token',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
    AWS_LAMBDA_FUNCTION_NAME: 'bench',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
    AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/bench',
    AWS_LAMBDA_LOG_STREAM_NAME: 'bench',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: smUrl,
    SMTP_SECRET_ID: secretId,
    ENDPOINT_CONFIG: JSON.stringify(config),
    ...(setup.dynamoDbUrl
      ? { IDEMPOTENCY_TABLE_NAME: BENCH_TABLE, AWS_ENDPOINT_URL_DYNAMODB: setup.dynamoDbUrl }
      : {}),
    POWERTOOLS_SERVICE_NAME: 'bench',
    BENCH_NONCE: nonce,
    BENCH_EVENTS: JSON.stringify(
      Array.from({ length: 1 + warm }, (_, i) => coldEvent(kind, `${nonce}.${i}`)),
    ),
    BENCH_WARM: String(warm),
  } satisfies NodeJS.ProcessEnv;
}

async function buildAll(opts: ColdStartOptions, dir: string): Promise<Record<string, BundleInfo>> {
  const sizes: Record<string, BundleInfo> = {};
  for (const variant of opts.variants) {
    sizes[`${variant} handler, SDK bundled`] = await buildHandler(variant, false, dir);
    if (!opts.sizes || (variant !== 'ours' && variant !== 'twin')) continue;
    sizes[`${variant} handler, SDK external`] = await buildHandler(variant, true, dir);
    sizes[`${variant} SMTP + MIME core`] = await buildCore(variant, dir);
  }
  writeFileSync(join(dir, 'invoke.mjs'), CHILD);
  return sizes;
}

interface Plan {
  variant: Variant;
  request: RequestKind;
  runs: ColdStartRun[];
  failures: string[];
}

/** `runs` rounds over every (variant, request) at one memory size, the order rotated each round. */
/** The latency proxy in front of the SMTP peer: its connection count per process. */
interface PeerCounter {
  reset(): Promise<void>;
  connections(): Promise<number>;
}

async function measureSize(
  cap: CpuCap,
  plans: Plan[],
  runs: number,
  bundleOf: (v: Variant) => string,
  envOf: (kind: RequestKind, variant: Variant) => NodeJS.ProcessEnv,
  peer: PeerCounter,
  log: (line: string) => void,
): Promise<void> {
  for (let i = 0; i < runs; i++) {
    const order = plans.map((_, k) => plans[(k + i) % plans.length]!);
    for (const p of order) {
      try {
        await peer.reset();
        const run = await runChild(cap, bundleOf(p.variant), envOf(p.request, p.variant), 120_000);
        run.smtpConnections = await peer.connections();
        p.runs.push(run);
      } catch (e) {
        p.failures.push((e as Error).message);
      }
    }
    if ((i + 1) % 5 === 0 || i + 1 === runs) log(`  ${cap.memoryMb} MB: ${i + 1}/${runs} rounds`);
  }
}

function cellOf(memoryMb: number, p: Plan): ColdStartCell {
  const s = (f: (r: ColdStartRun) => number) => summarize(p.runs.map(f));
  return {
    memoryMb,
    variant: p.variant,
    request: p.request,
    runs: p.runs.length,
    failures: [...new Set(p.failures)],
    total: s((r) => r.totalMs),
    nodeStart: s((r) => r.nodeStartMs),
    import: s((r) => r.importMs),
    firstRequest: s((r) => r.firstRequestMs),
    cpuImport: s((r) => r.cpuImportMs),
    cpuFirstRequest: s((r) => r.cpuFirstRequestMs),
    wall: s((r) => r.wallMs),
    smtpConnections: mode(p.runs.map((r) => r.smtpConnections)),
  };
}

function capReport(cap: CpuCap): CapReport {
  const st = cap.stats();
  return {
    memoryMb: cap.memoryMb,
    mechanism: cap.mechanism,
    quotaUs: cap.quotaUs,
    periodUs: cap.periodUs,
    share: cap.share,
    periods: st.periods,
    throttledPeriods: st.throttledPeriods,
    throttledMs: st.throttledMs,
  };
}

export async function runColdStart(opts: ColdStartOptions): Promise<ColdStartResult> {
  const log = opts.log ?? (() => {});
  const oneWayMs = opts.oneWayMs ?? 25;
  const requests = opts.requests ?? REQUEST_KINDS;
  const loadStart = os.loadavg();
  // Fail before building anything when the cap cannot be set up (no uncapped figure is reported as capped).
  openCpuCap(opts.memorySizes[0]!).close();
  const dir = opts.outDir ?? OUT_DIR;
  const sizes = await buildAll(opts, dir);
  const bundleOf = (v: Variant) => sizes[`${v} handler, SDK bundled`]!.file;

  const lab = await startLab({ withSmtpServerTls: false, exim: false });
  const secretId = 'bench/smtp';
  let sm: Awaited<ReturnType<typeof startSecretsManagerEndpoint>> | undefined;
  let smTls: Awaited<ReturnType<typeof startTlsFront>> | undefined;
  let ddb: Awaited<ReturnType<typeof startLocalDynamoDb>> | undefined;
  let ddbTls: Awaited<ReturnType<typeof startTlsFront>> | undefined;
  const cells: ColdStartCell[] = [];
  let warm: WarmCell[] = [];
  let setupHinted: Set<Variant> | undefined;
  const caps: CapReport[] = [];
  try {
    const peer = lab.peers.find((p) => p.id === '587-pipelining')!;
    await lab.setDelay(peer.id, oneWayMs);
    sm = await startSecretsManagerEndpoint({
      secrets: {
        [secretId]: {
          host: '127.0.0.1',
          port: peer.proxyPort,
          security: 'starttls',
          username: BENCH_AUTH.username,
          password: BENCH_AUTH.password,
          from: BENCH_FROM,
          // No `ca`: the dev CA is trusted through NODE_EXTRA_CA_CERTS, as a public CA is in production.
        },
      },
    });
    smTls = await startTlsFront(Number(new URL(sm.url).port));
    if (opts.records) {
      ddb = await startLocalDynamoDb(BENCH_TABLE);
      ddbTls = await startTlsFront(Number(new URL(ddb.url).port));
    }
    const setup: ChildSetup = {
      dir,
      smUrl: smTls.url,
      ...(ddbTls ? { dynamoDbUrl: ddbTls.url } : {}),
      secretId,
      smtpPort: peer.proxyPort,
      hinted: new Set(opts.variants.filter(knowsSmtpHint)),
    };
    setupHinted = setup.hinted;
    const counter: PeerCounter = {
      reset: () => lab.reset(peer.id),
      connections: async () => (await lab.snapshot(peer.id)).connections.length,
    };
    for (const memoryMb of opts.memorySizes) {
      const cap = openCpuCap(memoryMb);
      try {
        log(`cold start at ${memoryMb} MB (${cap.mechanism}, quota ${cap.quotaUs}/${cap.periodUs} µs)`);
        const plans: Plan[] = opts.variants.flatMap((variant) =>
          requests.map((request) => ({ variant, request, runs: [], failures: [] })),
        );
        const envOf = (kind: RequestKind, v: Variant) => childEnv(setup, v, memoryMb, kind, 0);
        await measureSize(cap, plans, opts.runs, bundleOf, envOf, counter, log);
        cells.push(...plans.map((p) => cellOf(memoryMb, p)));
        caps.push(capReport(cap));
      } finally {
        cap.close();
      }
    }
    if (opts.warm)
      warm = await measureWarm(
        opts,
        bundleOf,
        (mb, v, n) => childEnv(setup, v, mb, 'urlencoded', n),
        caps,
        counter,
        log,
      );
  } finally {
    await ddbTls?.close();
    await ddb?.close();
    await smTls?.close();
    await sm?.close();
    await lab.close();
  }
  return {
    mechanism: caps[0]!.mechanism,
    caps,
    sizes,
    cells,
    warm,
    hinted: [...(setupHinted ?? [])],
    records: !!opts.records,
    runs: opts.runs,
    oneWayMs,
    loadAverage: { start: loadStart, end: os.loadavg() },
  };
}

/** Warm urlencoded form posts (after the first) at one memory size. */
async function measureWarm(
  opts: ColdStartOptions,
  bundleOf: (v: Variant) => string,
  envFor: (memoryMb: number, variant: Variant, warm: number) => NodeJS.ProcessEnv,
  caps: CapReport[],
  counter: PeerCounter,
  log: (line: string) => void,
): Promise<WarmCell[]> {
  const w = opts.warm!;
  const cells: WarmCell[] = [];
  for (const memoryMb of w.memorySizes) {
    const cap = openCpuCap(memoryMb);
    try {
      log(`warm form posts at ${memoryMb} MB: ${w.processes} process(es) × ${w.requests} per handler`);
      const plans: Plan[] = opts.variants.map((variant) => ({
        variant,
        request: 'urlencoded',
        runs: [],
        failures: [],
      }));
      const envOf = (_: RequestKind, v: Variant) => envFor(memoryMb, v, w.requests);
      await measureSize(cap, plans, w.processes, bundleOf, envOf, counter, log);
      caps.push(capReport(cap));
      for (const p of plans) {
        cells.push({
          memoryMb,
          variant: p.variant,
          processes: p.runs.length,
          failures: [...new Set(p.failures)],
          latency: summarize(p.runs.flatMap((r) => r.warmMs)),
        });
      }
    } finally {
      cap.close();
    }
  }
  return cells;
}
