/**
 * `npm run bench` — our SMTP client vs nodemailer 10, same message, same server, same latency proxy, then the
 * cold start at the 256 MB CPU share. `npm run bench -- --quick` does fewer runs (the cold start: one process
 * per cell at the 1024 MB share). `npm run bench -- --cold` runs only the cold-start benchmark, at 128, 256, 512
 * and 1024 MB (`--sizes 256,512` and `--runs N` narrow it). Prints markdown tables and writes bench/results.json
 * (--cold: bench/results-cold.json; with --quick, --sizes or --runs: dist/bench/). Method: docs/benchmarks.md.
 * `npm run bench -- --dkim` measures DKIM signing per message against the unsigned compose (dist/bench/).
 * `npm run bench -- --edge` measures the public edge (bench/edge.ts: peak memory and CPU per hostile request,
 * bundled handler). Every case that cannot run is an error (exit code 1), never a skip.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchClient, type Endpoint, loadOurClient, nodemailerClient } from './clients.ts';
import { coldStartGoals, coldStartMarkdown } from './cold-report.ts';
import { type ColdStartOptions, type ColdStartResult, runColdStart } from './coldstart.ts';
import { runEdgeBench } from './edge.ts';
import { type IdempotencyBench, idempotencyMarkdown, runIdempotencyBench } from './idempotency.ts';
import { type Lab, type LabPeer, type PeerId, startLab } from './lab.ts';
import { benchMessage } from './message.ts';
import { fmtMs, mode, type Summary, summarize } from './stats.ts';

const argv = process.argv.slice(2);
const args = new Set(argv);
const QUICK = args.has('--quick');
const COLD_ONLY = args.has('--cold');
const DKIM_ONLY = args.has('--dkim');
/** `--idem`: only what idempotency adds per request (bench/idempotency.ts). */
const IDEM_ONLY = args.has('--idem');
const IDEM_ROUNDS = QUICK ? 10 : 50;
const QUEUE_ONLY = args.has('--queue');
const flagValue = (flag: string) => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
};
const SIZES = flagValue('--sizes')?.split(',').map(Number);
const COLD_RUNS = flagValue('--runs') === undefined ? undefined : Number(flagValue('--runs'));
/** `--at rev1,rev2`: also our handler as of those commits (each cut's gain, measured in the same run). */
const AT = flagValue('--at')
  ?.split(',')
  .map((rev) => `at:${rev}` as const);
/** `--records`: the children run with the send records table (idempotency on, as the construct deploys). */
const RECORDS = args.has('--records');
const VARIANTS = flagValue('--variants')?.split(',') as ColdStartOptions['variants'] | undefined;
const RUNS = QUICK ? 3 : 15;
/** The goal is stated for 100; --quick uses 40 (throughput per message is what is compared). */
const BATCH_SIZE = QUICK ? 40 : 100;
const BATCH_RUNS = QUICK ? 1 : 3;
const WARM_RUNS = QUICK ? 2 : 9;
const DELAYS = [0, 25] as const;
const HIGH = 25;
/** Upper bound for one measured operation; a stuck client is recorded as a failure, not awaited forever. */
const OP_TIMEOUT_MS = 60_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const log = (line: string) => process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------
// cases
// ---------------------------------------------------------------------------------------------

interface Case {
  id: PeerId;
  label: string;
  peer: LabPeer;
  lab: Lab;
  /** Goals at 25 ms one-way: round trips (ours) and added-latency ratio ours/nodemailer. */
  goalRtt?: number;
  goalRatio?: number;
}

interface SingleRow {
  caseId: string;
  delayMs: number;
  client: string;
  latency: Summary;
  proxyRoundTrips: number;
  proxyRoundTripsAll: number[];
  /** Client→server direction switches seen by the proxy (most frequent value). */
  proxyClientFlights: number;
  ownRoundTrips?: number;
  failures: string[];
}

interface AddedRow {
  caseId: string;
  label: string;
  oursAddedMs: number;
  nodemailerAddedMs: number;
  ratio: number;
  oursRtt: number;
  nodemailerRtt: number;
  goalRtt?: number;
  goalRatio?: number;
}

interface BatchRow {
  caseId: string;
  label: string;
  client: string;
  messages: number;
  delivered: number;
  seconds: number[];
  messagesPerSecond: number;
  proxyRoundTrips: number;
  ownRoundTrips?: number;
  failures: string[];
}

interface WarmRow {
  caseId: string;
  delayMs: number;
  client: string;
  latency: Summary;
  proxyRoundTrips: number;
  ownRoundTrips?: number;
  failures: string[];
}

interface Goal {
  goal: string;
  target: string;
  measured: string;
  met: boolean | null;
}

function endpoint(c: Case): Endpoint {
  return { port: c.peer.proxyPort, security: c.peer.security };
}

function errText(err: unknown): string {
  return (err as Error)?.message?.split('\n')[0] ?? String(err);
}

async function measureSingle(c: Case, clients: BenchClient[], delay: number): Promise<SingleRow[]> {
  await c.lab.setDelay(c.id, delay);
  const samples = new Map(
    clients.map((cl) => [
      cl.name,
      {
        latency: [] as number[],
        rtt: [] as number[],
        flights: [] as number[],
        own: [] as number[],
        failures: [] as string[],
      },
    ]),
  );
  let msgIndex = 0;
  for (let run = 0; run < RUNS; run++) {
    // Alternate who goes first so drift in machine load hits both the same way.
    const order = run % 2 === 0 ? clients : [...clients].reverse();
    for (const client of order) {
      const s = samples.get(client.name)!;
      await c.lab.reset(c.id);
      const t0 = performance.now();
      try {
        const result = await withTimeout(
          client.sendOne(endpoint(c), benchMessage(msgIndex++)),
          OP_TIMEOUT_MS,
          client.name,
        );
        const elapsed = performance.now() - t0;
        const stats = await c.lab.snapshot(c.id);
        s.latency.push(elapsed);
        s.rtt.push(stats.roundTrips);
        s.flights.push(stats.clientFlights);
        if (result.ownRoundTrips !== undefined) s.own.push(result.ownRoundTrips);
      } catch (err) {
        s.failures.push(errText(err));
      }
      await sleep(10);
    }
  }
  return clients.map((client) => {
    const s = samples.get(client.name)!;
    return {
      caseId: c.id,
      delayMs: delay,
      client: client.name,
      latency: summarize(s.latency),
      proxyRoundTrips: mode(s.rtt),
      proxyRoundTripsAll: [...new Set(s.rtt)].sort((a, b) => a - b),
      proxyClientFlights: mode(s.flights),
      ownRoundTrips: s.own.length ? mode(s.own) : undefined,
      failures: [...new Set(s.failures)],
    };
  });
}

async function measureBatch(c: Case, client: BenchClient): Promise<BatchRow> {
  await c.lab.setDelay(c.id, HIGH);
  const seconds: number[] = [];
  const failures: string[] = [];
  let delivered = 0;
  let rtt = 0;
  let own: number | undefined;
  for (let run = 0; run < BATCH_RUNS; run++) {
    const msgs = Array.from({ length: BATCH_SIZE }, (_, i) => benchMessage(run * BATCH_SIZE + i));
    await c.lab.reset(c.id);
    const t0 = performance.now();
    try {
      const r = await withTimeout(client.sendBatch(endpoint(c), msgs), OP_TIMEOUT_MS * 2, client.name);
      seconds.push((performance.now() - t0) / 1000);
      rtt = (await c.lab.snapshot(c.id)).roundTrips;
      delivered = r.delivered;
      own = r.ownRoundTrips;
      if (r.delivered !== BATCH_SIZE) failures.push(`${BATCH_SIZE - r.delivered} message(s) not delivered`);
    } catch (err) {
      failures.push(errText(err));
    }
    await sleep(50);
  }
  const med = summarize(seconds).median;
  return {
    caseId: c.id,
    label: c.label,
    client: client.name,
    messages: BATCH_SIZE,
    delivered,
    seconds,
    messagesPerSecond: delivered / med,
    proxyRoundTrips: rtt,
    ownRoundTrips: own,
    failures: [...new Set(failures)],
  };
}

async function measureWarm(c: Case, client: BenchClient, delay: number): Promise<WarmRow> {
  await c.lab.setDelay(c.id, delay);
  const latency: number[] = [];
  const rtt: number[] = [];
  const own: number[] = [];
  const failures: string[] = [];
  for (let run = 0; run < WARM_RUNS; run++) {
    await c.lab.reset(c.id);
    let session: ReturnType<BenchClient['openWarm']> | undefined;
    try {
      session = client.openWarm(endpoint(c));
      await withTimeout(session.send(benchMessage(2 * run)), OP_TIMEOUT_MS, client.name);
      // Let the session go idle, as between two Lambda invocations; anything the client does after
      // a send (e.g. RSET) belongs to the next send's cost only if it is still pending then.
      await sleep(3 * delay + 100);
      const before = await c.lab.snapshot(c.id);
      const t0 = performance.now();
      const r = await withTimeout(session.send(benchMessage(2 * run + 1)), OP_TIMEOUT_MS, client.name);
      const elapsed = performance.now() - t0;
      const after = await c.lab.snapshot(c.id);
      latency.push(elapsed);
      // Server flights during the second send (+1 per new connection: a fresh TCP handshake).
      const flights = (st: typeof before) => st.connections.reduce((n, x) => n + x.serverFlights, 0);
      rtt.push(flights(after) - flights(before) + (after.connections.length - before.connections.length));
      if (r.ownRoundTrips !== undefined) own.push(r.ownRoundTrips);
    } catch (err) {
      failures.push(errText(err));
    } finally {
      await session?.close().catch(() => {});
    }
    await sleep(20);
  }
  return {
    caseId: c.id,
    delayMs: delay,
    client: client.name,
    latency: summarize(latency),
    proxyRoundTrips: mode(rtt),
    ownRoundTrips: own.length ? mode(own) : undefined,
    failures: [...new Set(failures)],
  };
}

// ---------------------------------------------------------------------------------------------
// output
// ---------------------------------------------------------------------------------------------

function machineInfo() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    date: new Date().toISOString(),
    loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

function table(header: string[], rows: string[][]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

const spread = (s: Summary) => (s.n ? `${fmtMs(s.p10)}–${fmtMs(s.p90)}` : 'n/a');
const yesNo = (met: boolean | null) => (met === null ? 'n/a' : met ? 'met' : '**missed**');
const ratioText = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

function coldOptions(all: boolean): ColdStartOptions {
  const full = !QUICK;
  return {
    runs: COLD_RUNS ?? (full ? 15 : 1),
    memorySizes: SIZES ?? (all && full ? [128, 256, 512, 1024] : full ? [256] : [1024]),
    variants: [...(VARIANTS ?? (all && full ? ['ours', 'twin', 'before'] : ['ours', 'twin'])), ...(AT ?? [])],
    ...(all && full
      ? { warm: { memorySizes: SIZES ?? [128, 256, 512, 1024], processes: 3, requests: 15 } }
      : {}),
    sizes: true,
    ...(RECORDS ? { records: true } : {}),
    log,
  };
}

/** Every failed case, for the exit code: a benchmark case that could not run is an error. */
function failuresOf(
  cold: ColdStartResult,
  ...rows: Array<Array<{ failures: string[]; caseId?: string; client?: string }>>
): string[] {
  const out = cold.cells.flatMap((c) =>
    c.failures.map((f) => `cold ${c.memoryMb} MB ${c.variant} ${c.request}: ${f}`),
  );
  out.push(...cold.warm.flatMap((w) => w.failures.map((f) => `warm ${w.memoryMb} MB ${w.variant}: ${f}`)));
  for (const list of rows)
    for (const r of list) out.push(...r.failures.map((f) => `${r.caseId} ${r.client}: ${f}`));
  return out;
}

/** `--dkim`: DKIM signing cost per message, as ratios over the unsigned compose (bench/dkim.ts). */
async function dkimOnly(machine: ReturnType<typeof machineInfo>): Promise<string[]> {
  const { runDkimBench } = await import('./dkim.ts');
  const rows = runDkimBench(QUICK ? 5 : 15, QUICK ? 20 : 50);
  const us = (n: number) => `${n.toFixed(0)} µs`;
  const out = [
    `# DKIM signing cost per message${QUICK ? ' (quick)' : ''}`,
    '',
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}; ${machine.date}.`,
    '',
    table(
      ['message', 'variant', 'median', 'p90', 'ratio to unsigned'],
      rows.map((r) => [r.message, r.variant, us(r.medianUs), us(r.p90Us), `${r.ratio.toFixed(2)}×`]),
    ),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  const file = fileURLToPath(new URL('../dist/bench/results-dkim.json', import.meta.url));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ machine, dkim: rows }, null, 2)}\n`);
  log(`wrote ${file}`);
  return [];
}

/** `--idem`: the idempotency costs alone; writes bench/results-idempotency.json (--quick: dist/bench/). */
async function idemOnly(machine: ReturnType<typeof machineInfo>): Promise<string[]> {
  const idem: IdempotencyBench = await runIdempotencyBench(IDEM_ROUNDS, log);
  const out = [
    `# What idempotency adds per request (local stack)${QUICK ? ' (quick)' : ''}`,
    '',
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}; ${machine.date}. Median of ` +
      `${idem.rounds} per variant, interleaved; baseline = the same handler without the send records table.`,
    '',
    idempotencyMarkdown(idem, fmtMs),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  const file = fileURLToPath(
    new URL(
      QUICK ? '../dist/bench/results-idempotency-quick.json' : './results-idempotency.json',
      import.meta.url,
    ),
  );
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ machine, idempotency: idem }, null, 2)}\n`);
  log(`wrote ${file}`);
  return idem.rows.flatMap((r) => r.failures.map((f) => `idempotency ${r.variant}: ${f}`));
}

/** Ours at the default batch size vs nodemailer's default pool, per message count. */
function goalRatios(rows: Array<{ client: string; messages: number; perSecond: number }>): string {
  const counts = [...new Set(rows.map((r) => r.messages))];
  return counts
    .map((n) => {
      const ours = rows.find((r) => r.messages === n && r.client.includes('(default)'))!;
      const pool = rows.find((r) => r.messages === n && r.client.includes('defaults'))!;
      return `${(ours.perSecond / pool.perSecond).toFixed(2)}× (${n} messages)`;
    })
    .join(', ');
}

/** `--queue`: form post latency per delivery mode, and queue delivery throughput vs nodemailer's pool. */
async function queueOnly(machine: ReturnType<typeof machineInfo>): Promise<string[]> {
  const { runQueueBench } = await import('./queue.ts');
  const { forms, throughput } = await runQueueBench(QUICK);
  const sync = forms.find((f) => f.mode === 'sync')!;
  const out = [
    `# Queued delivery${QUICK ? ' (quick)' : ''}`,
    '',
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}; ${machine.date}. 25 ms one-way to the SMTP server.`,
    '',
    '## Form post response time at concurrency 20 (local stack)',
    '',
    table(
      ['mode', 'posts', 'p50', 'p99', 'p99 / sync p99', 'all delivered after'],
      forms.map((f) => [
        f.mode,
        String(f.posts),
        fmtMs(f.latency.p50),
        fmtMs(f.latency.p99),
        `${(f.latency.p99 / sync.latency.p99).toFixed(2)}×`,
        fmtMs(f.allDeliveredMs),
      ]),
    ),
    '',
    '## Delivery throughput over one connection with CHUNKING (Exim)',
    '',
    table(
      [
        'client',
        'messages',
        'time',
        'msgs/s',
        'vs nodemailer pool',
        'SMTP RTT (conns)',
        'batches',
        'first / later batch',
        'SQS (DynamoDB) calls',
      ],
      throughput.map((t) => {
        const pool = throughput.find((p) => p.messages === t.messages && p.client.includes('defaults'))!;
        const calls = (c: Record<string, number> | undefined) =>
          Object.entries(c ?? {})
            .map(([op, n]) => `${op.replace('Message', '')} ${n}`)
            .join(', ');
        const sqs = calls(t.sqsCalls) + (t.dynamoCalls ? ` (${calls(t.dynamoCalls)})` : '');
        return [
          t.client,
          String(t.messages),
          fmtMs(t.ms),
          t.perSecond.toFixed(1),
          `${(t.perSecond / pool.perSecond).toFixed(2)}×`,
          t.smtpRoundTrips !== undefined ? `${t.smtpRoundTrips} (${t.connections})` : '',
          t.batches !== undefined ? String(t.batches) : '',
          t.firstBatchMs !== undefined
            ? `${fmtMs(t.firstBatchMs)} / ${t.warmBatchMs !== undefined ? fmtMs(t.warmBatchMs) : '–'}`
            : '',
          sqs,
        ];
      }),
    ),
    '',
    `Goals: queue-mode p99 ≤ 0.25× sync p99: ${(forms.find((f) => f.mode === 'queue')!.latency.p99 / sync.latency.p99).toFixed(2)}×; ` +
      `queue throughput ≥ 10× nodemailer's pool: ${goalRatios(throughput)}.`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  const file = fileURLToPath(new URL('../dist/bench/results-queue.json', import.meta.url));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ machine, forms, throughput }, null, 2)}\n`);
  log(`wrote ${file}`);
  return [];
}

/** `--cold`: the cold-start benchmark alone, every memory size. */
async function coldOnly(started: number, machine: ReturnType<typeof machineInfo>): Promise<string[]> {
  const cold = await runColdStart(coldOptions(true));
  const goals = coldStartGoals(cold);
  const out = [
    `# Cold start at Lambda's CPU share${QUICK ? ' (quick)' : ''}`,
    '',
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, ${machine.platform}; ${machine.date}.`,
    '',
    coldStartMarkdown(cold),
    '',
    '## Goals',
    '',
    table(
      ['goal', 'target', 'measured', 'result'],
      goals.map((g) => [g.goal, g.target, g.measured, yesNo(g.met)]),
    ),
    '',
    `Total time ${((performance.now() - started) / 1000).toFixed(1)} s.`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  const partial =
    QUICK || SIZES !== undefined || COLD_RUNS !== undefined || AT !== undefined || VARIANTS !== undefined;
  const file = fileURLToPath(
    new URL(partial ? '../dist/bench/results-cold-partial.json' : './results-cold.json', import.meta.url),
  );
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ machine, coldStart: cold, goals }, null, 2)}\n`);
  log(`wrote ${file}`);
  return failuresOf(cold);
}

async function main(): Promise<string[]> {
  const started = performance.now();
  const machine = machineInfo();
  const closers: Array<() => Promise<void>> = [];
  const out: string[] = [];
  const say = (s = '') => out.push(s);

  try {
    if (COLD_ONLY) return await coldOnly(started, machine);
    if (DKIM_ONLY) return await dkimOnly(machine);
    if (args.has('--edge')) return await runEdgeBench();
    if (IDEM_ONLY) return await idemOnly(machine);
    if (QUEUE_ONLY) return await queueOnly(machine);
    const ours = await loadOurClient();
    if (typeof ours === 'string') throw new Error(`our client cannot run: ${ours}`);
    const clients: BenchClient[] = [ours, nodemailerClient];

    // Peers and one proxy in front of each, all in the lab process.
    const lab = await startLab({ withSmtpServerTls: !QUICK });
    closers.push(() => lab.close());
    const labels: Record<PeerId, [string, { goalRtt?: number; goalRatio?: number }]> = {
      '587-pipelining': ['STARTTLS + AUTH, PIPELINING (smtp-server)', { goalRtt: 8, goalRatio: 0.92 }],
      '587-chunking': ['STARTTLS + AUTH, PIPELINING + CHUNKING (Exim)', { goalRtt: 7, goalRatio: 0.8 }],
      '465-chunking': ['implicit TLS + AUTH, PIPELINING + CHUNKING (Exim)', { goalRtt: 5, goalRatio: 0.78 }],
      '465-pipelining': ['implicit TLS + AUTH, PIPELINING (smtp-server)', {}],
    };
    const order: PeerId[] = ['587-pipelining', '587-chunking', '465-chunking', '465-pipelining'];
    const cases: Case[] = order.flatMap((id) => {
      const peer = lab.peers.find((p) => p.id === id);
      if (!peer) return [];
      const [label, goals] = labels[id];
      return [{ id, label, peer, lab, ...goals }];
    });

    // Warm-up (JIT, TLS contexts, Exim's first fork): one unrecorded send per client per case.
    for (const c of cases) {
      await c.lab.setDelay(c.id, 0);
      for (const client of clients) {
        await withTimeout(client.sendOne(endpoint(c), benchMessage(9999)), OP_TIMEOUT_MS, client.name).catch(
          (err) => log(`warm-up ${client.name} on ${c.id}: ${errText(err)}`),
        );
      }
    }

    // 1. One message on a fresh connection.
    const single: SingleRow[] = [];
    for (const c of cases) {
      for (const delay of DELAYS) {
        log(`single send: ${c.id} at ${delay} ms one-way (${RUNS} runs per client)`);
        single.push(...(await measureSingle(c, clients, delay)));
      }
    }
    const added: AddedRow[] = [];
    for (const c of cases) {
      const get = (client: string, delay: number) =>
        single.find((r) => r.caseId === c.id && r.client === client && r.delayMs === delay);
      const o0 = get('ours', 0);
      const o1 = get('ours', HIGH);
      const n0 = get(nodemailerClient.name, 0);
      const n1 = get(nodemailerClient.name, HIGH);
      if (!o0 || !o1 || !n0 || !n1) continue;
      const oursAdded = o1.latency.median - o0.latency.median;
      const nmAdded = n1.latency.median - n0.latency.median;
      added.push({
        caseId: c.id,
        label: c.label,
        oursAddedMs: oursAdded,
        nodemailerAddedMs: nmAdded,
        ratio: oursAdded / nmAdded,
        oursRtt: o1.proxyRoundTrips,
        nodemailerRtt: n1.proxyRoundTrips,
        goalRtt: c.goalRtt,
        goalRatio: c.goalRatio,
      });
    }

    // 2. Batch of 100 over one session, at 25 ms one-way.
    const batch: BatchRow[] = [];
    for (const c of cases.filter((x) => x.id === '587-pipelining' || x.id === '587-chunking')) {
      for (const client of clients) {
        log(
          `batch: ${client.name}, ${BATCH_SIZE} messages on ${c.id} at ${HIGH} ms one-way (${BATCH_RUNS} run(s))`,
        );
        batch.push(await measureBatch(c, client));
      }
    }

    // 3. Warm send: the second message on a kept session.
    const warm: WarmRow[] = [];
    for (const c of cases.filter((x) => x.id === '587-pipelining' || x.id === '587-chunking')) {
      for (const delay of QUICK ? [HIGH] : DELAYS) {
        for (const client of clients) {
          log(`warm send: ${client.name} on ${c.id} at ${delay} ms one-way (${WARM_RUNS} runs)`);
          warm.push(await measureWarm(c, client, delay));
        }
      }
    }

    // Servers are no longer needed; the cold-start part starts its own.
    for (const close of closers.splice(0).reverse()) await close();

    // 4. Cold start: fresh node processes at a Lambda CPU share, bundle import + first request.
    log('cold start: bundles and fresh processes');
    const coldStart = await runColdStart(coldOptions(false));

    // ---------------- goals ----------------
    const goals: Goal[] = [];
    for (const a of added) {
      if (a.goalRtt !== undefined)
        goals.push({
          goal: `round trips, ${a.label}`,
          target: `≤ ${a.goalRtt}${a.caseId.startsWith('465') ? ' (floor in the protocol notes)' : ''}`,
          measured: `${a.oursRtt} (nodemailer ${a.nodemailerRtt})`,
          met: a.oursRtt <= a.goalRtt,
        });
      if (a.goalRatio !== undefined)
        goals.push({
          goal: `added latency ours/nodemailer at ${HIGH} ms, ${a.label}`,
          target: `≤ ${a.goalRatio.toFixed(2)}`,
          measured: ratioText(a.ratio),
          met: Number.isFinite(a.ratio) ? a.ratio <= a.goalRatio : null,
        });
    }
    for (const [caseId, target] of [
      ['587-pipelining', 1.8],
      ['587-chunking', 10],
    ] as const) {
      const o = batch.find((b) => b.caseId === caseId && b.client === 'ours');
      const n = batch.find((b) => b.caseId === caseId && b.client === nodemailerClient.name);
      if (!o || !n) continue;
      const x = o.messagesPerSecond / n.messagesPerSecond;
      goals.push({
        goal: `batch throughput ours/nodemailer, ${o.label}`,
        target: `≥ ${target}×`,
        measured: Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a',
        met: Number.isFinite(x) ? x >= target : null,
      });
    }
    goals.push(...coldStartGoals(coldStart));

    // ---------------- print ----------------
    say(`# SMTP client benchmark${QUICK ? ' (quick)' : ''}`);
    say();
    say(
      `Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}, ` +
        `${machine.platform}; ${machine.date}; load average at start ${machine.loadAverageAtStart.join(' / ')}.`,
    );
    say(`Runs: ${RUNS} per client per case and delay; batch ${BATCH_RUNS}×${BATCH_SIZE}; warm ${WARM_RUNS}.`);
    say();
    say('## One message, fresh connection (latency in ms; round trips counted by the proxy)');
    say();
    say(
      table(
        ['case', 'one-way', 'client', 'median', 'p10–p90', 'RTT (proxy)', 'RTT (own)', 'failures'],
        single.map((r) => [
          r.caseId,
          `${r.delayMs} ms`,
          r.client,
          fmtMs(r.latency.median),
          spread(r.latency),
          r.proxyRoundTripsAll.length > 1
            ? `${r.proxyRoundTrips} (seen ${r.proxyRoundTripsAll.join(',')})`
            : `${r.proxyRoundTrips}`,
          r.ownRoundTrips === undefined ? '–' : String(r.ownRoundTrips),
          r.failures.length ? r.failures.join('; ') : '0',
        ]),
      ),
    );
    say();
    say(`## Latency added by ${HIGH} ms one-way (median at ${HIGH} ms − median at 0 ms)`);
    say();
    say(
      table(
        ['case', 'ours added', 'nodemailer added', 'ratio', 'goal', 'RTT ours / nodemailer', 'RTT goal'],
        added.map((a) => [
          a.caseId,
          fmtMs(a.oursAddedMs),
          fmtMs(a.nodemailerAddedMs),
          ratioText(a.ratio),
          a.goalRatio === undefined ? '–' : `≤ ${a.goalRatio.toFixed(2)}`,
          `${a.oursRtt} / ${a.nodemailerRtt}`,
          a.goalRtt === undefined ? '–' : `≤ ${a.goalRtt}`,
        ]),
      ),
    );
    say();
    say(`## Batch: ${BATCH_SIZE} messages, one recipient each, one session, ${HIGH} ms one-way`);
    say();
    say(
      table(
        ['case', 'client', 'messages/s', 'seconds (runs)', 'RTT (proxy)', 'RTT (own)', 'failures'],
        batch.map((b) => [
          b.caseId,
          b.client,
          Number.isFinite(b.messagesPerSecond) ? b.messagesPerSecond.toFixed(1) : 'n/a',
          b.seconds.map((s) => s.toFixed(2)).join(', ') || 'n/a',
          String(b.proxyRoundTrips),
          b.ownRoundTrips === undefined ? '–' : String(b.ownRoundTrips),
          b.failures.length ? b.failures.join('; ') : '0',
        ]),
      ),
    );
    say();
    say('## Warm send: second message on a kept session');
    say();
    say(
      table(
        ['case', 'one-way', 'client', 'median ms', 'p10–p90', 'RTT (proxy)', 'RTT (own)', 'failures'],
        warm.map((w) => [
          w.caseId,
          `${w.delayMs} ms`,
          w.client,
          fmtMs(w.latency.median),
          spread(w.latency),
          String(w.proxyRoundTrips),
          w.ownRoundTrips === undefined ? '–' : String(w.ownRoundTrips),
          w.failures.length ? w.failures.join('; ') : '0',
        ]),
      ),
    );
    say();
    say('## Cold start at a Lambda CPU share, and bundle size');
    say();
    say(coldStartMarkdown(coldStart));
    say();
    say('## Goals');
    say();
    say(
      table(
        ['goal', 'target', 'measured', 'result'],
        goals.map((g) => [g.goal, g.target, g.measured, yesNo(g.met)]),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    say();
    say(
      `Total time ${seconds.toFixed(1)} s; load average at end ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' / ')}.`,
    );
    process.stdout.write(`${out.join('\n')}\n`);

    // The full run's results are kept in the repo; a --quick run goes to the git-ignored dist/.
    const resultsFile = fileURLToPath(
      new URL(QUICK ? '../dist/bench/results-quick.json' : './results.json', import.meta.url),
    );
    mkdirSync(dirname(resultsFile), { recursive: true });
    writeFileSync(
      resultsFile,
      `${JSON.stringify(
        {
          machine: { ...machine, loadAverageAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))) },
          quick: QUICK,
          runs: { single: RUNS, batch: BATCH_RUNS, batchSize: BATCH_SIZE, warm: WARM_RUNS },
          delaysMs: DELAYS,
          single,
          addedLatency: added,
          batch,
          warm,
          coldStart,
          goals,
          totalSeconds: Number(seconds.toFixed(1)),
        },
        null,
        2,
      )}\n`,
    );
    log(`wrote ${resultsFile}`);
    return failuresOf(coldStart, single, batch, warm);
  } finally {
    for (const close of closers.reverse()) await close().catch((err) => log(`close: ${errText(err)}`));
  }
}

main().then(
  (failures) => {
    if (failures.length) {
      log(`bench: ${failures.length} case(s) failed:\n${failures.map((f) => `- ${f}`).join('\n')}`);
      process.exit(1);
    }
    process.exit(0);
  },
  (err) => {
    log(`bench failed: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
