// `npx cdk synth` through the CLI and cdk.json, offline, no AWS credentials — and the real bundling path, once:
// esbuild bundles the product handler at synth (scripts/build.ts's options: ESM + createRequire banner, minified,
// source maps, code splitting), a configuration too large for the environment ships as a file next to it, and the
// bundled handler — loaded from the asset directory like Lambda would — answers a form preflight from it.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEndpointConfig, parseEndpointConfig } from '../../functions/config/endpoint.ts';
import { CONFIG_FILE_NAME } from '../../infra/smtp-send-endpoint.ts';
import { ESM_REQUIRE_BANNER, LAMBDA_RUNTIME } from '../../scripts/build.ts';
import { largeConfig, ROOT, tempDir } from './helpers.ts';
import { removeIsolatedHome } from './isolate-home.ts';

const work = tempDir('bundling');
const config = largeConfig();
let assetDir: string;
let env: Record<string, string>;
let handlerName: string;
// biome-ignore lint/suspicious/noExplicitAny: synthesized CloudFormation JSON
let template: any;
let report: { pluginReports: unknown[] };
type FnProps = { Environment: { Variables: Record<string, string> }; Handler: string; Runtime: string };

type Handler = (
  event: unknown,
  context: unknown,
) => Promise<{ statusCode: number; headers: Record<string, string> }>;

/** `npx cdk synth` exactly as a user runs it (cdk.json → `node --import tsx infra/app.ts`), offline and without AWS. */
function cdkSynth(args: string[], home: string): Promise<{ code: number | null; stderr: string }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    CDK_DISABLE_VERSION_CHECK: '1',
    npm_config_update_notifier: 'false',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  for (const k of ['AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'])
    delete env[k];
  return new Promise((resolveRun) => {
    const child = spawn('npx', ['cdk', 'synth', '--quiet', ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 100_000) stderr += d.toString();
    });
    child.on('close', (code) => resolveRun({ code, stderr }));
  });
}

beforeAll(async () => {
  const outdir = join(work.dir, 'out');
  const configFile = join(work.dir, 'large-endpoint.json');
  writeFileSync(configFile, JSON.stringify(config));
  mkdirSync(join(work.dir, 'home'));
  const run = await cdkSynth(['-o', outdir, '-c', `config=${configFile}`], join(work.dir, 'home'));
  expect(run.stderr).not.toMatch(/error|warning/i);
  expect(run.code).toBe(0);
  template = JSON.parse(readFileSync(join(outdir, 'SmtpSendEndpoint.template.json'), 'utf8'));
  const fn = Object.values(template.Resources as Record<string, { Type: string; Properties: FnProps }>).find(
    (r) => r.Type === 'AWS::Lambda::Function',
  )!;
  // A reference (the send records table's name) is resolved by CloudFormation; here it becomes its logical id.
  env = Object.fromEntries(
    Object.entries(fn.Properties.Environment.Variables as Record<string, unknown>).map(([k, v]) => [
      k,
      typeof v === 'string' ? v : String((v as { Ref?: string }).Ref ?? JSON.stringify(v)),
    ]),
  );
  handlerName = fn.Properties.Handler;
  report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8'));
  const assets = readdirSync(outdir).filter((d) => d.startsWith('asset.'));
  expect(assets).toHaveLength(1);
  assetDir = join(outdir, assets[0]!);
}, 300_000);

afterAll(() => {
  work.cleanup();
  removeIsolatedHome();
});

describe('npx cdk synth', () => {
  it('synthesizes offline with cdk-nag passing and the function on nodejs24.x / arm64', () => {
    expect(report.pluginReports).toEqual([]);
    const fn = Object.values(
      template.Resources as Record<string, { Type: string; Properties: FnProps }>,
    ).find((r) => r.Type === 'AWS::Lambda::Function')!;
    // the default runtime is the one scripts/build.ts targets
    expect(fn.Properties.Runtime).toBe(LAMBDA_RUNTIME);
    expect(LAMBDA_RUNTIME).toBe('nodejs24.x');
    expect(template.Parameters).toHaveProperty('BootstrapVersion');
  });
});

/** `./chunk-*.mjs` files a bundle file imports: statically (loaded at init) or by `import()` (at first use). */
function chunkImports(code: string): { static: string[]; dynamic: string[] } {
  const names = (re: RegExp) => [...code.matchAll(re)].map((m) => m[1]!);
  return {
    static: names(/(?:from|import)\s*"\.\/(chunk-[A-Z0-9]+\.mjs)"/g),
    dynamic: names(/import\(\s*"\.\/(chunk-[A-Z0-9]+\.mjs)"\s*\)/g),
  };
}

describe('bundling the product handler at synth', () => {
  it('produces a minified ESM bundle with the createRequire banner and a source map', () => {
    expect(handlerName).toBe('index.handler');
    const files = readdirSync(assetDir).sort();
    const chunks = files.filter((f) => /^chunk-[A-Z0-9]+\.mjs$/.test(f));
    expect(files).toEqual(
      [CONFIG_FILE_NAME, 'index.mjs', 'index.mjs.map', ...chunks, ...chunks.map((c) => `${c}.map`)].sort(),
    );
    const code = readFileSync(join(assetDir, 'index.mjs'), 'utf8');
    expect(code.split('\n', 1)[0]).toBe(ESM_REQUIRE_BANNER);
    // minified: far fewer lines than a readable bundle of this size
    expect(code.split('\n').length).toBeLessThan(200);
    expect(env.NODE_OPTIONS).toBe('--enable-source-maps');
  });

  /** What only some requests use, each by a string only its own module has (minifying keeps strings). */
  const LAZY_MARKERS: Record<string, string> = {
    'Powertools JMESPath (the idempotency payload hash)': 'JMESPath',
    'busboy (multipart forms)': 'Malformed part header',
    'CAPTCHA verification (handlers/captcha-verify.ts)': 'the CAPTCHA was not accepted',
    'the dead-letter redrive (handlers/sqs.ts)': 'redrive_malformed_body',
    'the delivery queue consumer (handlers/delivery.ts)': 'queue_malformed_body',
  };

  it('splits what only some requests load into chunks that init does not parse, and keeps init in few files', () => {
    const read = (f: string) => readFileSync(join(assetDir, f), 'utf8');
    // The files init loads: the entry, the one chunk the entry itself import()s at its top level (the rest of the
    // code, loaded after the TCP connect has started: functions/handlers/index.ts), and their static imports.
    const eager = new Set<string>();
    const lazy = new Set<string>();
    const visit = (f: string) => {
      if (eager.has(f)) return;
      eager.add(f);
      const imports = chunkImports(read(f));
      for (const d of imports.dynamic) lazy.add(d);
      for (const s of imports.static) visit(s);
    };
    visit('index.mjs');
    const awaited = chunkImports(read('index.mjs')).dynamic;
    expect(awaited).toHaveLength(1);
    for (const f of awaited) visit(f);
    const files = new Set(readdirSync(assetDir));
    for (const f of [...eager, ...lazy]) expect(files.has(f), f).toBe(true);
    const onlyLazy = [...lazy].filter((f) => !eager.has(f));
    // the store, busboy, the CAPTCHA check, the SQS records' code
    expect(onlyLazy.length).toBeGreaterThanOrEqual(4);
    for (const [what, marker] of Object.entries(LAZY_MARKERS)) {
      expect(
        [...eager].filter((f) => read(f).includes(marker)),
        what,
      ).toEqual([]);
      expect(
        onlyLazy.some((f) => read(f).includes(marker)),
        what,
      ).toBe(true);
    }
    // Every lazy chunk imports the instance's code first (handlers/store-chunk.ts says why), so the code init
    // loads is not split further by which lazy chunks share it: the entry, the awaited instance code, and the
    // code both of them use. One more lazy chunk without that first import would add a file here.
    expect([...eager].length, [...eager].join(' ')).toBeLessThanOrEqual(4);
  });

  it('ships a large configuration as a file instead of the 4 KB environment', () => {
    expect(env.ENDPOINT_CONFIG).toBeUndefined();
    expect(env.ENDPOINT_CONFIG_FILE).toBe(CONFIG_FILE_NAME);
    const shipped = JSON.parse(readFileSync(join(assetDir, CONFIG_FILE_NAME), 'utf8'));
    expect(shipped).toEqual(config);
    // what the function's own loader reads in Lambda (relative to LAMBDA_TASK_ROOT = the unpacked asset)
    expect(loadEndpointConfig({ ...env, LAMBDA_TASK_ROOT: assetDir })).toEqual(parseEndpointConfig(config));
  });

  it('loads like Lambda loads it and answers a form preflight from the shipped configuration', async () => {
    const mod = (await import(pathToFileURL(join(assetDir, 'index.mjs')).href)) as {
      handler: Handler;
      createHandler: (opts: { env: Record<string, string> }) => Handler & { close(): Promise<void> };
    };
    expect(typeof mod.handler).toBe('function');
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT'; // the Logger reads process.env; this test process only
    const handler = mod.createHandler({ env: { ...env, LAMBDA_TASK_ROOT: assetDir } });
    const preflight = (formId: string, origin: string) =>
      handler(
        {
          version: '2.0',
          routeKey: 'OPTIONS /forms/{formId}',
          rawPath: `/forms/${formId}`,
          rawQueryString: '',
          headers: { origin, accept: 'application/json' },
          pathParameters: { formId },
          requestContext: { http: { method: 'OPTIONS', path: `/forms/${formId}` }, stage: '$default' },
          isBase64Encoded: false,
        },
        {},
      );
    try {
      const ok = await preflight('form-7', 'https://site-7.example.com');
      expect(ok.statusCode).toBe(204);
      expect(ok.headers['access-control-allow-origin']).toBe('https://site-7.example.com');
      const wrongOrigin = await preflight('form-7', 'https://site-8.example.com');
      expect(wrongOrigin.statusCode).toBeGreaterThanOrEqual(400);
      const unknownForm = await preflight('no-such-form', 'https://site-7.example.com');
      expect(unknownForm.statusCode).toBe(404);
    } finally {
      await handler.close();
    }
  });

  it('stages the config file inside the cloud assembly, not in the source tree', () => {
    expect(existsSync(join(work.dir, 'out', 'smtp-send-endpoint-config'))).toBe(true);
  });
});
