/**
 * Bundle the Lambda handler as the CDK `NodejsFunction` builds it (the infra construct passes `LAMBDA_BUNDLE` and
 * `esbuildTarget(runtime)` to `bundling`): ESM, platform node, target node24, minified, source map,
 * `mainFields: ['module', 'main']`, and a banner defining `require` (via `createRequire`) for CJS dependencies
 * such as busboy. Code splitting (`SPLIT_OUTPUT`): what the handler loads by `import()` only for some requests
 * (the send records store with Powertools idempotency/JMESPath, busboy) goes to chunk files next to the entry,
 * so init parses only the eager code (measured at the 256 MB share: init CPU 29.7 → 26.7 ms, docs/benchmarks.md).
 * Output: `dist/handler/index.mjs` + `chunk-*.mjs` (+ `.map`s). One difference: the infra bundles the AWS SDK
 * (the tested version); here it is left external unless `externalAwsSdk: false`.
 *
 * `npm run build` → prints the sizes. Programmatic: `await buildHandler({ outdir, externalAwsSdk })`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type BuildOptions, build, type Metafile } from 'esbuild';

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

/**
 * esbuild code splitting into one directory: the entry is `index.mjs` (Lambda's `index.handler`), the lazily
 * imported modules and the code they share with it are `chunk-<hash>.mjs` files that it imports relatively.
 * `.mjs` for all: the asset has no package.json, so a `.js` chunk would load as CommonJS.
 */
export const SPLIT_OUTPUT = {
  splitting: true,
  entryNames: 'index',
  chunkNames: 'chunk-[hash]',
  outExtension: { '.js': '.mjs' },
} as const;

export interface BuildHandlerOptions {
  /** Default `dist/handler`. */
  outdir?: string;
  /** Leave `@aws-sdk/*` to the Lambda runtime (NodejsFunction default). Default true. */
  externalAwsSdk?: boolean;
  /** Write a metafile next to the bundle (`meta.json`). */
  metafile?: boolean;
  /** Default the product handler (functions/handlers/index.ts). */
  entry?: string;
  /** esbuild target. Default `esbuildTarget()` (the default Lambda runtime's). */
  target?: string;
}

export interface BuildHandlerResult {
  /** The entry, `<outdir>/index.mjs`. */
  outfile: string;
  /** Code bytes of every output file (entry and chunks, no source maps). */
  bytes: number;
  /** Code bytes loaded at import: the entry, the chunks it imports, and those it import()s at its top level. */
  eagerBytes: number;
  /** Those files (absolute paths). */
  eagerFiles: string[];
  mapBytes: number;
}

export function esbuildOptions(opts: BuildHandlerOptions = {}): BuildOptions {
  const outdir = resolve(ROOT, opts.outdir ?? 'dist/handler');
  return {
    entryPoints: [opts.entry ?? HANDLER_ENTRY],
    outdir,
    ...SPLIT_OUTPUT,
    bundle: true,
    format: 'esm',
    platform: LAMBDA_BUNDLE.platform,
    target: opts.target ?? esbuildTarget(),
    minify: LAMBDA_BUNDLE.minify,
    sourcemap: true,
    mainFields: [...LAMBDA_BUNDLE.mainFields],
    banner: { js: LAMBDA_BUNDLE.banner },
    external: opts.externalAwsSdk === false ? [] : ['@aws-sdk/*'],
    logLevel: 'silent',
    metafile: true,
    // Metafile paths relative to the repository, wherever the build runs from.
    absWorkingDir: ROOT,
    legalComments: 'none',
  };
}

/** Sizes from an esbuild metafile of an `esbuildOptions()` build (`outdir` = where the entry is). */
export function outputSizes(meta: Metafile, outdir: string): Omit<BuildHandlerResult, 'outfile'> {
  const outputs = new Map(Object.entries(meta.outputs).map(([f, o]) => [resolve(ROOT, f), o]));
  const code = [...outputs].filter(([f]) => !f.endsWith('.map'));
  const eager = new Set<string>();
  const visit = (file: string) => {
    if (eager.has(file)) return;
    eager.add(file);
    for (const i of outputs.get(file)?.imports ?? [])
      if (i.kind === 'import-statement' && !i.external) visit(resolve(ROOT, i.path));
  };
  // Init loads the entry, what it imports, and the code the entry itself import()s (awaited at its top level:
  // functions/handlers/index.ts). Every other import() is at first use.
  const entry = join(outdir, 'index.mjs');
  visit(entry);
  for (const i of outputs.get(entry)?.imports ?? [])
    if (i.kind === 'dynamic-import' && !i.external) visit(resolve(ROOT, i.path));
  const sum = (files: Array<[string, { bytes: number }]>) => files.reduce((n, [, o]) => n + o.bytes, 0);
  return {
    bytes: sum(code),
    eagerBytes: sum(code.filter(([f]) => eager.has(f))),
    eagerFiles: [...eager],
    mapBytes: sum([...outputs].filter(([f]) => f.endsWith('.map'))),
  };
}

export async function buildHandler(opts: BuildHandlerOptions = {}): Promise<BuildHandlerResult> {
  const options = esbuildOptions(opts);
  const outdir = options.outdir!;
  await mkdir(outdir, { recursive: true });
  const result = await build(options);
  if (opts.metafile) await writeFile(join(outdir, 'meta.json'), JSON.stringify(result.metafile));
  return { outfile: join(outdir, 'index.mjs'), ...outputSizes(result.metafile!, outdir) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const main = await buildHandler();
  console.log(
    `${main.outfile}: ${kib(main.eagerBytes)} at init, ${kib(main.bytes)} with chunks (AWS SDK external)`,
  );
  const full = await buildHandler({ outdir: 'dist/handler-with-sdk', externalAwsSdk: false });
  console.log(
    `${full.outfile}: ${kib(full.eagerBytes)} at init, ${kib(full.bytes)} with chunks (AWS SDK bundled)`,
  );
}
