/** Markdown tables and goals of the cold-start benchmark (./coldstart.ts). */
import type { Variant } from './bundle.ts';
import type { RequestKind } from './cold-requests.ts';
import type { ColdStartCell, ColdStartGoal, ColdStartResult } from './coldstart.ts';
import { fmtMs, type Summary } from './stats.ts';

const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
const NAMES: Record<string, string> = {
  ours: 'ours',
  twin: 'nodemailer twin',
  before: 'ours before the cuts',
  single: 'ours in one file',
};

function table(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : 'n/a');
const med = (s: Summary | undefined) => (s?.n ? fmtMs(s.median) : 'n/a');
const range = (s: Summary | undefined) => (s?.n ? `${fmtMs(s.p10)}–${fmtMs(s.p90)}` : 'n/a');

/** Median over every cell of one (memory size, variant): init does not depend on the request. */
function pooled(r: ColdStartResult, mb: number, v: Variant, pick: (c: ColdStartCell) => Summary): number {
  const cs = r.cells.filter((c) => c.memoryMb === mb && c.variant === v && c.runs > 0);
  const ms = cs.map((c) => pick(c).median).sort((a, b) => a - b);
  return ms.length ? ms[Math.floor((ms.length - 1) / 2)]! : Number.NaN;
}

function cell(r: ColdStartResult, mb: number, v: Variant, q: RequestKind): ColdStartCell | undefined {
  return r.cells.find((c) => c.memoryMb === mb && c.variant === v && c.request === q);
}

const nameOf = (v: Variant) => NAMES[v] ?? v;

export function coldStartMarkdown(r: ColdStartResult): string {
  const variants = [...new Set(r.cells.map((c) => c.variant))];
  const sizes = [...new Set(r.cells.map((c) => c.memoryMb))];
  const requests = [...new Set(r.cells.map((c) => c.request))];
  const vs = variants.filter((v) => v !== 'twin');
  const out: string[] = [];
  out.push(
    `CPU cap: **${r.mechanism}**, period ${r.caps[0]?.periodUs ?? 'n/a'} µs, quota = period × MB / 1769. ` +
      `Fresh processes per cell: ${r.runs}; SMTP peer at ${r.oneWayMs} ms one-way; load average ` +
      `${r.loadAverage.start.map((x) => x.toFixed(1)).join('/')} at start, ` +
      `${r.loadAverage.end.map((x) => x.toFixed(1)).join('/')} at end. ` +
      (r.hinted.length
        ? `With the SMTP server named in the configuration (\`smtp\`, connect while the secret loads): ${r.hinted.map(nameOf).join(', ')}.`
        : 'No handler had the SMTP server in its configuration.') +
      (r.records
        ? ' **With the send records table** (idempotency on, as deployed; dynalite behind TLS): ours and the' +
          ' `at:` revisions since issue 11 claim each form post and record each send; the frozen handlers ignore it.'
        : ''),
    '',
    ...table(
      ['memory', 'vCPU share', 'quota µs', 'periods', 'throttled periods', 'throttled s'],
      r.caps.map((c) => [
        `${c.memoryMb} MB`,
        c.share.toFixed(3),
        String(c.quotaUs),
        String(c.periods),
        String(c.throttledPeriods),
        (c.throttledMs / 1000).toFixed(1),
      ]),
    ),
    '',
    '**Process start → first response** (median ms, p10–p90 under it in the JSON):',
    '',
    ...table(
      ['memory', 'request', ...variants.map((v) => nameOf(v)), ...vs.map((v) => `${v}/twin`), 'failures'],
      sizes.flatMap((mb) =>
        requests.map((q) => {
          const t = cell(r, mb, 'twin', q);
          return [
            `${mb} MB`,
            q,
            ...variants.map((v) => `${med(cell(r, mb, v, q)?.total)} (${range(cell(r, mb, v, q)?.total)})`),
            ...vs.map((v) =>
              ratio(cell(r, mb, v, q)?.total.median ?? Number.NaN, t?.total.median ?? Number.NaN),
            ),
            String(variants.reduce((n, v) => n + (cell(r, mb, v, q)?.failures.length ?? 0), 0)),
          ];
        }),
      ),
    ),
    '',
    '**Init** (import of the bundle; median over the request kinds) and bare Node start, ms; CPU ms in brackets:',
    '',
    ...table(
      ['memory', 'node start', ...variants.map((v) => `${nameOf(v)} init`), ...vs.map((v) => `${v}/twin`)],
      sizes.map((mb) => [
        `${mb} MB`,
        fmtMs(pooled(r, mb, 'twin', (c) => c.nodeStart)),
        ...variants.map(
          (v) =>
            `${fmtMs(pooled(r, mb, v, (c) => c.import))} [${fmtMs(pooled(r, mb, v, (c) => c.cpuImport))}]`,
        ),
        ...vs.map((v) =>
          ratio(
            pooled(r, mb, v, (c) => c.import),
            pooled(r, mb, 'twin', (c) => c.import),
          ),
        ),
      ]),
    ),
    '',
    '**First request** (handler call → response), median ms; CPU ms in brackets:',
    '',
    ...table(
      ['memory', 'request', ...variants.map((v) => nameOf(v)), ...vs.map((v) => `${v}/twin`)],
      sizes.flatMap((mb) =>
        requests.map((q) => [
          `${mb} MB`,
          q,
          ...variants.map(
            (v) => `${med(cell(r, mb, v, q)?.firstRequest)} [${med(cell(r, mb, v, q)?.cpuFirstRequest)}]`,
          ),
          ...vs.map((v) =>
            ratio(
              cell(r, mb, v, q)?.firstRequest.median ?? Number.NaN,
              cell(r, mb, 'twin', q)?.firstRequest.median ?? Number.NaN,
            ),
          ),
        ]),
      ),
    ),
  );
  out.push(
    '',
    `SMTP connections per process (the latency proxy's count, most frequent): ${variants
      .map(
        (v) =>
          `${nameOf(v)} ${[...new Set(r.cells.filter((c) => c.variant === v).map((c) => c.smtpConnections))].join('/')}`,
      )
      .join(', ')}.`,
  );
  if (r.warm.length) {
    out.push(
      '',
      `**Warm urlencoded form post** (same process, after its first request, 100 ms apart), ms:`,
      '',
      ...table(
        ['memory', 'handler', 'p50', 'p10–p90', 'samples', 'failures'],
        r.warm.map((w) => [
          `${w.memoryMb} MB`,
          nameOf(w.variant),
          med(w.latency),
          range(w.latency),
          String(w.latency.n),
          w.failures.length ? w.failures.join('; ') : '0',
        ]),
      ),
    );
  }
  const failures = r.cells.flatMap((c) =>
    c.failures.map((f) => `${c.memoryMb} MB ${c.variant} ${c.request}: ${f}`),
  );
  if (failures.length) out.push('', 'Failures:', '', ...failures.map((f) => `- ${f}`));
  const cost = costMarkdown(r);
  if (cost.length) out.push('', ...cost);
  out.push('', ...sizesMarkdown(r));
  return out.join('\n');
}

function sizesMarkdown(r: ColdStartResult): string[] {
  const out = table(
    ['bundle', 'minified', 'at init', 'gzip (at init)', 'largest parts'],
    Object.entries(r.sizes).map(([name, info]) => [
      name,
      kb(info.bytes),
      kb(info.eagerBytes),
      kb(info.gzipBytes),
      info.parts
        .slice(0, 5)
        .map((p) => `${p.part} ${kb(p.bytes)}`)
        .join(', '),
    ]),
  );
  return ['Bundles:', '', ...out];
}

/**
 * Lambda's published on-demand prices, us-east-1 (aws.amazon.com/lambda/pricing, first pricing tier): duration per
 * GB-second by architecture, and requests. Since 1 August 2025 the INIT phase is billed like the invocation (AWS
 * Compute Blog, "AWS Lambda standardizes billing for INIT Phase"), so a cold send bills init + first request.
 */
export const LAMBDA_PRICE = {
  gbSecond: { arm64: 0.0000133334, x86_64: 0.0000166667 },
  perRequest: 0.2 / 1_000_000,
} as const;

export interface CostRow {
  memoryMb: number;
  coldMs: number;
  initMs: number;
  warmMs: number;
  coldGbSeconds: number;
  warmGbSeconds: number;
  /** USD per million sends (duration + request charge), arm64 as the construct deploys. */
  coldPerMillion: number;
  warmPerMillion: number;
}

/** Cost per cold and per warm urlencoded form post of `variant` at each memory size measured. */
export function costRows(r: ColdStartResult, variant: Variant = 'ours'): CostRow[] {
  const sizes = [...new Set(r.cells.map((c) => c.memoryMb))];
  return sizes.flatMap((mb) => {
    const c = cell(r, mb, variant, 'urlencoded');
    const w = r.warm.find((x) => x.memoryMb === mb && x.variant === variant);
    if (!c?.runs) return [];
    const gb = mb / 1024;
    // Billed: the INIT phase (runtime start + the import) and the first invocation = process start → response.
    const coldMs = c.total.median;
    const warmMs = w?.latency.n ? w.latency.median : Number.NaN;
    const price = (ms: number) =>
      ((ms / 1000) * gb * LAMBDA_PRICE.gbSecond.arm64 + LAMBDA_PRICE.perRequest) * 1e6;
    return [
      {
        memoryMb: mb,
        coldMs,
        initMs: c.import.median,
        warmMs,
        coldGbSeconds: (coldMs / 1000) * gb,
        warmGbSeconds: (warmMs / 1000) * gb,
        coldPerMillion: price(coldMs),
        warmPerMillion: price(warmMs),
      },
    ];
  });
}

/** The memory-size table: latency and cost per cold and per warm urlencoded form post (ours). */
export function costMarkdown(r: ColdStartResult, variant: Variant = 'ours'): string[] {
  const rows = costRows(r, variant);
  if (!rows.length) return [];
  const usd = (x: number) => (Number.isFinite(x) ? `$${x.toFixed(2)}` : 'n/a');
  const gbs = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : 'n/a');
  return [
    `**Memory size: latency and cost** (${nameOf(variant)}, urlencoded form post; arm64 at $${LAMBDA_PRICE.gbSecond.arm64}/GB-s + $0.20 per million requests; a cold send bills process start → response, INIT included):`,
    '',
    ...table(
      [
        'memory',
        'cold ms',
        'warm p50 ms',
        'GB-s cold',
        'GB-s warm',
        '$ per million cold',
        '$ per million warm',
      ],
      rows.map((c) => [
        `${c.memoryMb} MB`,
        fmtMs(c.coldMs),
        fmtMs(c.warmMs),
        gbs(c.coldGbSeconds),
        gbs(c.warmGbSeconds),
        usd(c.coldPerMillion),
        usd(c.warmPerMillion),
      ]),
    ),
  ];
}

export function coldStartGoals(r: ColdStartResult): ColdStartGoal[] {
  const goals: ColdStartGoal[] = [];
  const at = r.cells.some((c) => c.memoryMb === 256) ? 256 : r.cells[0]?.memoryMb;
  if (at !== undefined) {
    const o = cell(r, at, 'ours', 'urlencoded');
    const t = cell(r, at, 'twin', 'urlencoded');
    if (o?.runs && t?.runs) {
      const x = o.total.median / t.total.median;
      goals.push({
        goal: `cold urlencoded form post at the ${at} MB share, process start → response, ours/twin`,
        target: '≤ 0.60×',
        measured: `${x.toFixed(2)}× (${fmtMs(o.total.median)} / ${fmtMs(t.total.median)} ms)`,
        met: x <= 0.6,
      });
    }
    const oi = pooled(r, at, 'ours', (c) => c.import);
    const ti = pooled(r, at, 'twin', (c) => c.import);
    if (Number.isFinite(oi / ti)) {
      goals.push({
        goal: `init (import) at the ${at} MB share, ours/twin`,
        target: '≤ 0.50×',
        measured:
          `${(oi / ti).toFixed(2)}× (${fmtMs(oi)} / ${fmtMs(ti)} ms; CPU ` +
          `${fmtMs(pooled(r, at, 'ours', (c) => c.cpuImport))} / ${fmtMs(pooled(r, at, 'twin', (c) => c.cpuImport))} ms)`,
        met: oi / ti <= 0.5,
      });
    }
  }
  const warmAt = r.warm.some((w) => w.memoryMb === at) ? at : r.warm[0]?.memoryMb;
  const wo = r.warm.find((w) => w.variant === 'ours' && w.memoryMb === warmAt);
  const wb = r.warm.find((w) => w.variant === 'before' && w.memoryMb === warmAt);
  if (wo?.latency.n && wb?.latency.n) {
    const x = wo.latency.median / wb.latency.median;
    goals.push({
      goal: `warm urlencoded form post p50 at ${wo.memoryMb} MB, ours/ours-before-the-cuts`,
      target: '≤ 1.05×',
      measured: `${x.toFixed(2)}× (${fmtMs(wo.latency.median)} / ${fmtMs(wb.latency.median)} ms)`,
      met: x <= 1.05,
    });
  }
  const core = r.sizes['ours SMTP + MIME core'];
  if (core) {
    goals.push({
      goal: 'SMTP + MIME core alone, minified',
      target: '≤ 30 KB',
      measured: `${kb(core.bytes)} (nodemailer: ${kb(r.sizes['twin SMTP + MIME core']?.bytes ?? Number.NaN)})`,
      met: core.bytes <= 30 * 1024,
    });
  }
  const noSdk = r.sizes['ours handler, SDK external'];
  if (noSdk) {
    goals.push({
      goal: 'handler bundle without the SDK, minified',
      target: '≤ 100 KB',
      measured: `${kb(noSdk.bytes)} (twin: ${kb(r.sizes['twin handler, SDK external']?.bytes ?? Number.NaN)})`,
      met: noSdk.bytes <= 100 * 1024,
    });
  }
  return goals;
}
