/**
 * Bundle the Lambda handler exactly as the CDK `NodejsFunction` builds it (see `nodejsFunctionBundling`, which
 * the infra construct passes to `bundling`): ESM, platform node, target node22, minified, source map,
 * `mainFields: ['module', 'main']`, and a banner defining `require` (via `createRequire`) for CJS dependencies
 * such as busboy. Output: `dist/handler/index.mjs` (+ `.map`).
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

/**
 * The `bundling` options for `aws-lambda-nodejs.NodejsFunction` that reproduce this build
 * (`format: OutputFormat.ESM` and `sourceMap: true` map to the values below).
 */
export const nodejsFunctionBundling = {
  format: 'esm',
  target: 'node22',
  platform: 'node',
  minify: true,
  sourceMap: true,
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
  /** The node22 runtime ships AWS SDK v3; NodejsFunction leaves `@aws-sdk/*` out by default. */
  externalModules: ['@aws-sdk/*'],
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
    platform: 'node',
    target: 'node22',
    minify: true,
    sourcemap: true,
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
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
  console.log(`${main.outfile}: ${kib(main.bytes)} (AWS SDK external, as deployed)`);
  const full = await buildHandler({ outdir: 'dist/handler-with-sdk', externalAwsSdk: false });
  console.log(`${full.outfile}: ${kib(full.bytes)} (AWS SDK bundled)`);
}
