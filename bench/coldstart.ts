/**
 * Cold start: the esbuild bundle of our Lambda handler vs its nodemailer twin (bench/twin/, built by
 * bench/bundle.ts from the same handler source). For each, a fresh `node` process imports the bundle
 * and serves its first request — a direct invoke that sends one message — against local servers:
 * smtp-server (STARTTLS + AUTH + PIPELINING) and the local Secrets Manager endpoint
 * (local/secrets-manager-endpoint.ts). Reported: bundle sizes and the time from process start to the
 * first response (median of many fresh processes).
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSecretsManagerEndpoint } from '../local/secrets-manager-endpoint.ts';
import { type BundleInfo, buildCore, buildHandler, OUT_DIR, REPO, type Variant } from './bundle.ts';
import { BENCH_FROM } from './message.ts';
import { BENCH_AUTH, startSmtpServerPeer } from './peers.ts';
import { fmtMs, type Summary, summarize } from './stats.ts';

export interface ColdStartGoal {
  goal: string;
  target: string;
  measured: string;
  met: boolean | null;
}

export interface ColdStartRun {
  /** Wall time from spawn to the first response, measured by the parent. */
  wallMs: number;
  /** Inside the child: process start (performance.timeOrigin) → first response. */
  sinceProcessStartMs: number;
  importMs: number;
  firstRequestMs: number;
}

export interface ColdStartVariant {
  variant: Variant;
  sdk: 'bundled' | 'external';
  bundle: BundleInfo;
  runs: number;
  failures: string[];
  sinceProcessStart: Summary;
  wall: Summary;
  import: Summary;
  firstRequest: Summary;
}

export interface ColdStartResult {
  markdown: string;
  goals: ColdStartGoal[];
  sizes: Record<string, BundleInfo>;
  variants: ColdStartVariant[];
}

/** Child: import the bundle, serve one direct invoke, print one marker line with timings. */
const CHILD = `
const t0 = performance.now();
const mod = await import(process.argv[2]);
const t1 = performance.now();
const context = {
  awsRequestId: 'bench-cold-start', functionName: 'bench', functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:bench', memoryLimitInMB: '512',
  logGroupName: '/aws/lambda/bench', logStreamName: 'bench', callbackWaitsForEmptyEventLoop: false,
  getRemainingTimeInMillis: () => 30000,
};
const res = await mod.handler(JSON.parse(process.env.BENCH_EVENT), context);
const t2 = performance.now();
process.stdout.write('\\nBENCH_RESULT ' + JSON.stringify({ ok: res && res.ok === true, error: res && res.error && res.error.code, importMs: t1 - t0, firstRequestMs: t2 - t1, sinceProcessStartMs: t2 }) + '\\n');
await mod.handler.close?.();
process.exit(0);
`;

function runChild(bundle: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ColdStartRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(OUT_DIR, 'invoke.mjs'), bundle], {
      cwd: REPO,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let result: ColdStartRun | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no response within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /\nBENCH_RESULT (\{.*\})\n/.exec(out);
      if (m && !result) {
        const wallMs = performance.now() - started;
        const r = JSON.parse(m[1]!) as { ok: boolean; error?: string } & Omit<ColdStartRun, 'wallMs'>;
        if (!r.ok) {
          clearTimeout(timer);
          child.kill('SIGKILL');
          reject(new Error(`first request failed: ${r.error ?? 'unknown'}`));
          return;
        }
        result = { wallMs, ...r };
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (result) resolve(result);
      else reject(new Error(`child exited (${code}) without a result: ${err.trim().slice(-300)}`));
    });
  });
}

const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;

export async function runColdStart(opts: {
  quick: boolean;
  /** Which handlers to build and run (default both). */
  only?: Variant[];
}): Promise<ColdStartResult | string> {
  const which = opts.only ?? (['ours', 'twin'] as const);
  const needed = ['functions/handlers/index.ts', 'functions/mime/index.ts'];
  if (which.includes('ours')) needed.push('functions/smtp/index.ts');
  for (const p of needed) {
    if (!existsSync(join(REPO, p))) return `${p} does not exist yet`;
  }
  const runs = opts.quick ? 5 : 15;

  // Bundles (sizes are reported whether or not the processes run).
  const sizes: Record<string, BundleInfo> = {};
  for (const variant of which) {
    sizes[`${variant} handler, SDK bundled`] = await buildHandler(variant, false);
    sizes[`${variant} handler, SDK external`] = await buildHandler(variant, true);
    sizes[`${variant} SMTP + MIME core`] = await buildCore(variant);
  }
  writeFileSync(join(OUT_DIR, 'invoke.mjs'), CHILD);

  const peer = await startSmtpServerPeer('starttls');
  const secretId = 'bench/smtp';
  const sm = await startSecretsManagerEndpoint({
    secrets: {
      [secretId]: {
        host: '127.0.0.1',
        port: peer.port,
        security: 'starttls',
        username: BENCH_AUTH.username,
        password: BENCH_AUTH.password,
        from: BENCH_FROM,
        // No `ca` here: the dev CA is trusted through NODE_EXTRA_CA_CERTS (below), as a public CA is
        // in production, so both handlers use Node's default trust store.
      },
    },
  });
  const variants: ColdStartVariant[] = [];
  try {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      NODE_EXTRA_CA_CERTS: join(REPO, 'certs/dev/ca.pem'),
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
      SMTP_SECRET_ID: secretId,
      ENDPOINT_CONFIG: JSON.stringify({ send: { allowedRecipients: ['*@example.com'] } }),
      POWERTOOLS_SERVICE_NAME: 'bench',
      BENCH_EVENT: JSON.stringify({
        to: 'cold-start@example.com',
        subject: 'Cold start',
        text: 'First request of a fresh process.',
      }),
    };
    const plan: Array<{ variant: Variant; sdk: 'bundled' | 'external' }> = [
      { variant: 'ours', sdk: 'bundled' },
      { variant: 'twin', sdk: 'bundled' },
    ];
    if (!opts.quick) plan.push({ variant: 'ours', sdk: 'external' }, { variant: 'twin', sdk: 'external' });
    for (let k = plan.length - 1; k >= 0; k--) if (!which.includes(plan[k]!.variant)) plan.splice(k, 1);
    const samples = plan.map(() => ({ runs: [] as ColdStartRun[], failures: [] as string[] }));
    // Interleave the variants run by run so machine-load drift hits all of them alike.
    for (let i = 0; i < runs; i++) {
      for (let k = 0; k < plan.length; k++) {
        const p = plan[k]!;
        const file = sizes[`${p.variant} handler, SDK ${p.sdk}`]!.file;
        try {
          samples[k]!.runs.push(await runChild(file, env, 30_000));
        } catch (e) {
          samples[k]!.failures.push((e as Error).message);
        }
      }
    }
    plan.forEach((p, k) => {
      const s = samples[k]!;
      variants.push({
        variant: p.variant,
        sdk: p.sdk,
        bundle: sizes[`${p.variant} handler, SDK ${p.sdk}`]!,
        runs: s.runs.length,
        failures: [...new Set(s.failures)],
        sinceProcessStart: summarize(s.runs.map((r) => r.sinceProcessStartMs)),
        wall: summarize(s.runs.map((r) => r.wallMs)),
        import: summarize(s.runs.map((r) => r.importMs)),
        firstRequest: summarize(s.runs.map((r) => r.firstRequestMs)),
      });
    });
  } finally {
    await sm.close();
    await peer.close();
  }

  // ---------------- report ----------------
  const lines: string[] = [];
  lines.push('| bundle | minified | gzip |', '|---|---|---|');
  for (const [name, info] of Object.entries(sizes))
    lines.push(`| ${name} | ${kb(info.bytes)} | ${kb(info.gzipBytes)} |`);
  lines.push('');
  const partsLine = (name: string) => {
    const info = sizes[name];
    if (!info) return;
    const top = info.parts.slice(0, 8).map((p) => `${p.part} ${kb(p.bytes)}`);
    lines.push(`- ${name}: ${top.join(', ')}`);
  };
  lines.push('Where the minified bytes are (largest parts):', '');
  partsLine('ours SMTP + MIME core');
  partsLine('ours handler, SDK external');
  partsLine('twin handler, SDK external');
  lines.push('');
  lines.push(
    `Fresh \`node\` process → import bundle → first request served (direct invoke, one message via STARTTLS + AUTH to local smtp-server, secret from the local Secrets Manager endpoint); ms, ${runs} runs each.`,
  );
  lines.push('');
  lines.push(
    '| handler | SDK | process start → first response (median) | p10–p90 | min | import | first request | spawn → response (parent) | failures |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const v of variants) {
    lines.push(
      `| ${v.variant === 'ours' ? 'ours' : 'nodemailer twin'} | ${v.sdk} | ${fmtMs(v.sinceProcessStart.median)} | ` +
        `${fmtMs(v.sinceProcessStart.p10)}–${fmtMs(v.sinceProcessStart.p90)} | ${fmtMs(v.sinceProcessStart.min)} | ` +
        `${fmtMs(v.import.median)} | ` +
        `${fmtMs(v.firstRequest.median)} | ${fmtMs(v.wall.median)} | ${v.failures.length ? v.failures.join('; ') : '0'} |`,
    );
  }

  const goals: ColdStartGoal[] = [];
  const core = sizes['ours SMTP + MIME core'];
  if (core) {
    goals.push({
      goal: 'SMTP + MIME core alone, minified',
      target: '≤ 30 KB',
      measured: `${kb(core.bytes)} (nodemailer: ${kb(sizes['twin SMTP + MIME core']?.bytes ?? Number.NaN)})`,
      met: core.bytes <= 30 * 1024,
    });
  }
  const handlerNoSdk = sizes['ours handler, SDK external'];
  if (handlerNoSdk) {
    goals.push({
      goal: 'handler bundle without the SDK, minified',
      target: '≤ 100 KB',
      measured: `${kb(handlerNoSdk.bytes)} (twin: ${kb(sizes['twin handler, SDK external']?.bytes ?? Number.NaN)})`,
      met: handlerNoSdk.bytes <= 100 * 1024,
    });
  }
  for (const sdk of ['bundled', 'external'] as const) {
    const o = variants.find((v) => v.variant === 'ours' && v.sdk === sdk);
    const t = variants.find((v) => v.variant === 'twin' && v.sdk === sdk);
    if (!o || !t || !o.runs || !t.runs) continue;
    const ratio = o.sinceProcessStart.median / t.sinceProcessStart.median;
    goals.push({
      goal: `cold start (process start → first response) ours/twin, SDK ${sdk}`,
      target: '≤ 0.85×',
      measured: `${ratio.toFixed(2)}× (${fmtMs(o.sinceProcessStart.median)} / ${fmtMs(t.sinceProcessStart.median)} ms)`,
      met: ratio <= 0.85,
    });
  }
  return { markdown: lines.join('\n'), goals, sizes, variants };
}
