/**
 * Bundle the Lambda handler as the CDK `NodejsFunction` builds it (the infra construct passes `LAMBDA_BUNDLE` and
 * `esbuildTarget(runtime)` to `bundling`): ESM, platform node, target node24, minified, source map,
 * `mainFields: ['module', 'main']`, and a banner defining `require` (via `createRequire`) for CJS dependencies
 * such as busboy. Output: `dist/handler/index.mjs` (+ `.map`). One difference: the infra bundles the AWS SDK
 * (the tested version); here it is left external unless `externalAwsSdk: false`.
 *
 * `npm run build` → prints the sizes. Programmatic: `await buildHandler({ outdir, externalAwsSdk })`.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type BuildOptions, build } from 'esbuild';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const HANDLER_ENTRY = join(ROOT, 'functions/handlers/index.ts');

/** Defines `require` for CJS code inside the ESM bundle (what NodejsFunction users put in `banner`). */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __smtpSendCreateRequire } from 'node:module'; " +
  'const require = __smtpSendCreateRequire(import.meta.url);';

/** The Lambda runtime the infra deploys by default (`SmtpSendEndpoint` props.runtime). */
export const LAMBDA_RUNTIME = 'nodejs24.x';

/** esbuild target for a Lambda Node.js runtime: `nodejs24.x` → `node24` (unversioned names: the default's). */
export function esbuildTarget(runtimeName: string = LAMBDA_RUNTIME): string {
  const major = /^nodejs(\d+)\.x$/.exec(runtimeName)?.[1];
  return major ? `node${major}` : esbuildTarget();
}

/**
 * The bundle settings shared by `esbuildOptions` below and the CDK `NodejsFunction` (infra/smtp-send-endpoint.ts
 * passes them to `bundling`, with `format: OutputFormat.ESM` and `sourceMap`): one source of truth.
 */
export const LAMBDA_BUNDLE = {
  platform: 'node',
  minify: true,
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
} as const;

export interface BuildHandlerOptions {
  /** Default `dist/handler`. */
  outdir?: string;
  /** Leave `@aws-sdk/*` to the Lambda runtime (NodejsFunction default). Default true. */
  externalAwsSdk?: boolean;
  /** Write a metafile next to the bundle (`meta.json`). */
  metafile?: boolean;
}

export interface BuildHandlerResult {
  outfile: string;
  bytes: number;
  mapBytes: number;
}

export function esbuildOptions(opts: BuildHandlerOptions = {}): BuildOptions {
  const outdir = resolve(ROOT, opts.outdir ?? 'dist/handler');
  return {
    entryPoints: [HANDLER_ENTRY],
    outfile: join(outdir, 'index.mjs'),
    bundle: true,
    format: 'esm',
    platform: LAMBDA_BUNDLE.platform,
    target: esbuildTarget(),
    minify: LAMBDA_BUNDLE.minify,
    sourcemap: true,
    mainFields: [...LAMBDA_BUNDLE.mainFields],
    banner: { js: LAMBDA_BUNDLE.banner },
    external: opts.externalAwsSdk === false ? [] : ['@aws-sdk/*'],
    logLevel: 'silent',
    metafile: !!opts.metafile,
    legalComments: 'none',
  };
}

export async function buildHandler(opts: BuildHandlerOptions = {}): Promise<BuildHandlerResult> {
  const options = esbuildOptions(opts);
  const outfile = options.outfile!;
  await mkdir(dirname(outfile), { recursive: true });
  const result = await build(options);
  if (result.metafile) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dirname(outfile), 'meta.json'), JSON.stringify(result.metafile));
  }
  return { outfile, bytes: (await stat(outfile)).size, mapBytes: (await stat(`${outfile}.map`)).size };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const main = await buildHandler();
  console.log(`${main.outfile}: ${kib(main.bytes)} (AWS SDK external)`);
  const full = await buildHandler({ outdir: 'dist/handler-with-sdk', externalAwsSdk: false });
  console.log(`${full.outfile}: ${kib(full.bytes)} (AWS SDK bundled, as deployed)`);
}
