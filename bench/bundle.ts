/**
 * esbuild bundles for the cold-start comparison, all with the project's own Lambda build options
 * (`esbuildOptions()` from scripts/build.ts: ESM, node24, minified, `mainFields: module, main`,
 * `require` banner — what the CDK NodejsFunction deploys). The twin is the SAME handler source with
 * exactly two modules swapped at resolution time: functions/smtp/index.ts → bench/twin/smtp.ts and
 * functions/mime/index.ts → bench/twin/mime.ts (nodemailer). Output goes to dist/bench/ (git-ignored,
 * inside the repo so an externalised @aws-sdk resolves from node_modules, as the Lambda runtime
 * provides it).
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';
import { esbuildOptions } from '../scripts/build.ts';

export const REPO = fileURLToPath(new URL('../', import.meta.url));
export const OUT_DIR = join(REPO, 'dist', 'bench');

const SWAPS: Record<string, string> = {
  [join(REPO, 'functions/smtp/index.ts')]: join(REPO, 'bench/twin/smtp.ts'),
  [join(REPO, 'functions/mime/index.ts')]: join(REPO, 'bench/twin/mime.ts'),
};

/** Redirects imports of our SMTP and MIME layers to the nodemailer twins. */
const twinPlugin: Plugin = {
  name: 'nodemailer-twin',
  setup(b) {
    b.onResolve({ filter: /\/(smtp|mime)\/index\.ts$/ }, (args) => {
      const target = SWAPS[resolve(args.resolveDir, args.path)];
      return target ? { path: target } : undefined;
    });
  },
};

export interface BundleInfo {
  file: string;
  bytes: number;
  gzipBytes: number;
  /** Minified bytes per package or source folder (from esbuild's metafile), largest first. */
  parts: Array<{ part: string; bytes: number }>;
}

/** `node_modules/@scope/pkg/...` → `@scope/pkg`; `functions/smtp/x.ts` → `functions/smtp`. */
function partOf(input: string): string {
  const nm = input.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = input.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  return input.split('/').slice(0, 2).join('/');
}

async function bundle(opts: {
  entry?: string;
  stdin?: string;
  out: string;
  externalSdk: boolean;
  twin: boolean;
}): Promise<BundleInfo> {
  mkdirSync(dirname(opts.out), { recursive: true });
  const base = esbuildOptions({ externalAwsSdk: opts.externalSdk });
  const { entryPoints: _entry, outfile: _out, sourcemap: _map, ...shared } = base;
  const result = await build({
    ...shared,
    metafile: true,
    ...(opts.entry
      ? { entryPoints: [opts.entry] }
      : { stdin: { contents: opts.stdin!, resolveDir: REPO, loader: 'ts', sourcefile: 'core-entry.ts' } }),
    outfile: opts.out,
    // Sizes are of the code alone (the deployed .map file is separate and not loaded at run time).
    sourcemap: false,
    plugins: opts.twin ? [twinPlugin] : [],
  });
  const bytes = statSync(opts.out).size;
  const parts = new Map<string, number>();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [input, info] of Object.entries(output.inputs)) {
      const part = partOf(input);
      parts.set(part, (parts.get(part) ?? 0) + info.bytesInOutput);
    }
  }
  return {
    file: opts.out,
    bytes,
    gzipBytes: gzipSync(readFileSync(opts.out)).length,
    parts: [...parts]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([part, n]) => ({ part, bytes: n })),
  };
}

export type Variant = 'ours' | 'twin';

export function buildHandler(variant: Variant, externalSdk: boolean): Promise<BundleInfo> {
  return bundle({
    entry: join(REPO, 'functions/handlers/index.ts'),
    out: join(OUT_DIR, `${variant}${externalSdk ? '-sdk-external' : ''}`, 'index.mjs'),
    externalSdk,
    twin: variant === 'twin',
  });
}

/** The SMTP + MIME core alone (ours), or what replaces it in the twin (nodemailer). */
export function buildCore(variant: Variant): Promise<BundleInfo> {
  return bundle({
    stdin:
      variant === 'ours'
        ? "export * from './functions/smtp/index.ts';\nexport * from './functions/mime/index.ts';\n"
        : "export * from './bench/twin/smtp.ts';\nexport * from './bench/twin/mime.ts';\n",
    out: join(OUT_DIR, `core-${variant}`, 'index.mjs'),
    externalSdk: true,
    twin: false,
  });
}
