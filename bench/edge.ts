/**
 * `npm run bench -- --edge` — memory and CPU of the public edge (issue #10), on the BUNDLED handler (the esbuild
 * bundle NodejsFunction deploys). Every case of the hostile corpus (test/support/hostile-edge.ts) and the worst
 * requests the edge accepts run each in a fresh `node` process: import the bundle, serve one small valid request
 * (a warm function: SMTP session open, code compiled), then the case. Reported per case: the process's peak RSS
 * (`resourceUsage().maxRSS`, the whole life of the process, as Lambda's "Max Memory Used"), the CPU time of the
 * case's invocation alone, its status and response size. Budget at the deployed 256 MB: peak ≤ 160 MB for an
 * accepted request, ≤ 100 MB for a rejected hostile one, CPU ≤ 50 ms per rejected request.
 * Writes dist/bench/edge-results.json and prints a markdown table (docs/benchmarks.md keeps the latest).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { startSecretsManagerEndpoint } from '../local/secrets-manager-endpoint.ts';
import { buildHandler } from '../scripts/build.ts';
import { formEvent, multipart, sendEvent } from '../test/handlers/events.ts';
import {
  BAD_CONFIG,
  EDGE_CONFIG,
  EDGE_FORM,
  EDGE_ORIGIN,
  type EdgeSetup,
  HOSTILE_CASES,
  MISSING_SECRET_ARN,
} from '../test/support/hostile-edge.ts';
import { OUT_DIR, REPO } from './bundle.ts';
import { BENCH_AUTH, startSmtpServerPeer, TLS_MATERIAL } from './peers.ts';

export const EDGE_BUDGET = { acceptedPeakMb: 160, rejectedPeakMb: 100, rejectedCpuMs: 50 } as const;
const CHILD_TIMEOUT_MS = 60_000;
const BASELINE_CASE = 'origin-allowed';
const DIR = join(OUT_DIR, 'edge');

interface EdgeCase {
  id: string;
  row: string;
  setup: EdgeSetup;
  accepted: boolean;
  event: () => unknown;
}

export interface EdgeRow {
  id: string;
  row: string;
  accepted: boolean;
  status: number;
  responseBytes: number;
  peakRssMb: number;
  baselineRssMb: number;
  cpuMs: number;
  withinBudget: boolean;
}

/** The largest requests the edge accepts: every limit at its default, just under it. */
function worstAccepted(): EdgeCase[] {
  const MiB = 1024 * 1024;
  const script = { origin: EDGE_ORIGIN, accept: 'application/json', 'sec-fetch-mode': 'cors' };
  const valid: Array<[string, string]> = [
    ['name', 'Ana'],
    ['email', 'ana@visitor.example'],
    ['message', 'Hello'],
  ];
  // 97 more fields of `<` (the HTML copy's worst character), together just under maxBodyBytes.
  const fields = [
    ...valid,
    ...Array.from({ length: 97 }, (_, i): [string, string] => [`f${i}`, '<'.repeat(Math.floor(MiB / 100))]),
  ];
  const files = [0, 1].map((i) => ({
    field: 'files',
    filename: `upload-${i}.bin`,
    type: 'application/octet-stream',
    content: Buffer.alloc(2 * MiB - 1, i + 1),
  }));
  const upload = multipart(fields, files);
  const urlencoded = fields.map(([k, v]) => `${k}=${v}`).join('&');
  return [
    {
      id: 'accepted-multipart-100-fields-2-files',
      row: 'budget',
      setup: 'default',
      accepted: true,
      event: () =>
        formEvent(EDGE_FORM, {
          headers: { 'content-type': upload.contentType, ...script },
          body: upload.body,
          base64: true,
        }),
    },
    {
      id: 'accepted-urlencoded-1mib-of-lt',
      row: 'budget',
      setup: 'default',
      accepted: true,
      event: () =>
        formEvent(EDGE_FORM, {
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...script },
          body: urlencoded,
          base64: true,
        }),
    },
    {
      id: 'accepted-send-1mib-text-1mib-html-3mib-attachment',
      row: 'budget',
      setup: 'default',
      accepted: true,
      event: () =>
        sendEvent({
          to: 'bob@example.com',
          subject: 'Largest /send',
          text: 'x'.repeat(MiB - 1),
          html: `<p>${'y'.repeat(MiB - 16)}</p>`,
          attachments: [
            {
              filename: 'big.bin',
              contentType: 'application/octet-stream',
              // As much as fits in maxRequestBytes (6 MiB) next to 1 MiB of text and 1 MiB of HTML.
              content: Buffer.alloc(Math.floor((4 * MiB - 8192) / 4) * 3, 7).toString('base64'),
            },
          ],
        }),
    },
  ];
}

const CHILD = `
import { readFileSync } from 'node:fs';
const [bundle, eventFile] = process.argv.slice(2);
const context = (id) => ({
  awsRequestId: id, functionName: 'bench', functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:bench', memoryLimitInMB: '256',
  logGroupName: '/aws/lambda/bench', logStreamName: 'bench', callbackWaitsForEmptyEventLoop: false,
  getRemainingTimeInMillis: () => 30000,
});
const mod = await import(bundle);
await mod.handler(JSON.parse(process.env.BENCH_WARMUP), context('warm-up'));
const event = JSON.parse(readFileSync(eventFile, 'utf8'));
globalThis.gc?.();
const baseline = process.memoryUsage().rss;
const cpu0 = process.cpuUsage();
const res = await mod.handler(event, context('case'));
const cpu = process.cpuUsage(cpu0);
const body = res && typeof res.body === 'string' ? res.body : JSON.stringify(res ?? null);
process.stdout.write('\\nEDGE_RESULT ' + JSON.stringify({
  status: res && res.statusCode,
  responseBytes: Buffer.byteLength(body, 'utf8'),
  cpuMs: (cpu.user + cpu.system) / 1000,
  baselineRssMb: baseline / 1048576,
  peakRssMb: process.resourceUsage().maxRSS / 1024,
}) + '\\n');
await mod.handler.close?.();
process.exit(0);
`;

function runChild(
  bundle: string,
  eventFile: string,
  env: NodeJS.ProcessEnv,
): Promise<Omit<EdgeRow, 'id' | 'row' | 'accepted' | 'withinBudget'>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', join(DIR, 'child.mjs'), bundle, eventFile], {
      cwd: REPO,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const m = /\nEDGE_RESULT (\{.*\})\n/.exec(out);
      if (m) resolve(JSON.parse(m[1]!));
      else reject(new Error(`child exited (${code}) without a result: ${err.trim().slice(-300)}`));
    });
  });
}

/** Runs every case; returns the ones that could not run (an error, never a skip). */
export async function runEdgeBench(): Promise<string[]> {
  mkdirSync(DIR, { recursive: true });
  const { outfile } = await buildHandler({ outdir: join('dist', 'bench', 'edge', 'handler') });
  writeFileSync(join(DIR, 'child.mjs'), CHILD);
  const peer = await startSmtpServerPeer('starttls');
  const secret = {
    host: '127.0.0.1',
    port: peer.port,
    security: 'starttls',
    username: BENCH_AUTH.username,
    password: BENCH_AUTH.password,
    from: 'noreply@example.com',
    ca: TLS_MATERIAL.ca,
  };
  const sm = await startSecretsManagerEndpoint({ secrets: { smtp: secret } });
  const warmup = JSON.stringify(sendEvent({ to: 'warm@example.com', subject: 'warm-up', text: 'x' }));
  const envFor = (setup: EdgeSetup): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDLOCALBENCH',
    AWS_SECRET_ACCESS_KEY: 'local-bench-secret',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
    SMTP_SECRET_ID: setup === 'missing-secret' ? MISSING_SECRET_ARN : 'smtp',
    ENDPOINT_CONFIG: JSON.stringify(setup === 'bad-config' ? BAD_CONFIG : EDGE_CONFIG),
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    BENCH_WARMUP: warmup,
  });
  const cases: EdgeCase[] = [
    ...worstAccepted(),
    ...HOSTILE_CASES.map((c) => ({
      id: c.id,
      row: String(c.row),
      setup: c.setup ?? 'default',
      accepted: c.expect.status < 400,
      event: c.event,
    })),
  ];
  const rows: EdgeRow[] = [];
  const failures: string[] = [];
  try {
    for (const c of cases) {
      const eventFile = join(DIR, 'event.json');
      writeFileSync(eventFile, JSON.stringify(c.event()));
      const r = await runChild(outfile, eventFile, envFor(c.setup)).catch((e: Error) => {
        failures.push(`edge ${c.id}: ${e.message}`);
        return undefined;
      });
      if (!r) continue;
      const withinBudget = c.accepted
        ? r.peakRssMb <= EDGE_BUDGET.acceptedPeakMb
        : r.peakRssMb <= EDGE_BUDGET.rejectedPeakMb && r.cpuMs <= EDGE_BUDGET.rejectedCpuMs;
      rows.push({ id: c.id, row: c.row, accepted: c.accepted, ...r, withinBudget });
      process.stderr.write(`${c.id}: ${r.status} ${r.peakRssMb.toFixed(0)} MB ${r.cpuMs.toFixed(0)} ms\n`);
    }
  } finally {
    await sm.close();
    await peer.close();
  }
  const mb = (n: number) => n.toFixed(0);
  // The named baseline of the same run: a minimal valid form post, delivered (the corpus's `origin-allowed`).
  const baseline = rows.find((r) => r.id === BASELINE_CASE);
  const ratio = (r: EdgeRow) =>
    baseline && baseline.cpuMs > 0 ? `${(r.cpuMs / baseline.cpuMs).toFixed(1)}×` : '–';
  const lines = [
    `Bundled handler, one fresh \`node\` ${process.version} process per case (${os.cpus().length} CPUs, load ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(
        ' / ',
      )}). Budget: accepted peak ≤ ${EDGE_BUDGET.acceptedPeakMb} MB; rejected peak ≤ ${EDGE_BUDGET.rejectedPeakMb} MB and CPU ≤ ${EDGE_BUDGET.rejectedCpuMs} ms.`,
    '',
    `CPU ratio: the case's CPU over the baseline's (\`${BASELINE_CASE}\`: a minimal valid form post, delivered).`,
    '',
    '| row | case | status | response bytes | peak RSS (MB) | RSS before the case (MB) | CPU of the case (ms) | CPU ratio | within budget |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.row} | ${r.id} | ${r.status} | ${r.responseBytes} | ${mb(r.peakRssMb)} | ${mb(r.baselineRssMb)} | ${r.cpuMs.toFixed(1)} | ${ratio(r)} | ${r.withinBudget ? 'yes' : '**no**'} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  writeFileSync(
    join(OUT_DIR, 'edge-results.json'),
    `${JSON.stringify({ node: process.version, rows }, null, 2)}\n`,
  );
  return failures;
}
