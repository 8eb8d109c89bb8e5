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
        : 'No handler had the SMTP server in its configuration.'),
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
  out.push('', ...sizesMarkdown(r));
  return out.join('\n');
}

function sizesMarkdown(r: ColdStartResult): string[] {
  const out = table(
    ['bundle', 'minified', 'gzip', 'largest parts'],
    Object.entries(r.sizes).map(([name, info]) => [
      name,
      kb(info.bytes),
      kb(info.gzipBytes),
      info.parts
        .slice(0, 5)
        .map((p) => `${p.part} ${kb(p.bytes)}`)
        .join(', '),
    ]),
  );
  return ['Bundles:', '', ...out];
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
        measured: `${(oi / ti).toFixed(2)}× (${fmtMs(oi)} / ${fmtMs(ti)} ms)`,
        met: oi / ti <= 0.5,
      });
    }
  }
  const wo = r.warm.find((w) => w.variant === 'ours');
  const wb = r.warm.find((w) => w.variant === 'before');
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
