/**
 * esbuild bundles for the cold-start comparison, all with the project's own Lambda build options
 * (`esbuildOptions()` from scripts/build.ts: ESM, node24, minified, `mainFields: module, main`,
 * `require` banner — what the CDK NodejsFunction deploys). The twin is the handler source FROZEN at
 * bench/twin/frozen.ts's TWIN_COMMIT with exactly two modules swapped at resolution time:
 * functions/smtp/index.ts → bench/twin/smtp.ts and functions/mime/index.ts → bench/twin/mime.ts
 * (nodemailer). Output goes to dist/bench/ (git-ignored,
 * inside the repo so an externalised @aws-sdk resolves from node_modules, as the Lambda runtime
 * provides it).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';
import { esbuildOptions, outputSizes, SPLIT_OUTPUT } from '../scripts/build.ts';
import { extractFrozenTwin, extractTree, type FrozenTwinSource } from './twin/frozen.ts';

export const REPO = fileURLToPath(new URL('../', import.meta.url));
export const OUT_DIR = join(REPO, 'dist', 'bench');

/** Redirects the frozen handler's imports of its SMTP and MIME layers to the nodemailer twins. */
function twinPlugin(swaps: Record<string, string>): Plugin {
  return {
    name: 'nodemailer-twin',
    setup(b) {
      b.onResolve({ filter: /\/(smtp|mime)\/index\.ts$/ }, (args) => {
        const target = swaps[resolve(args.resolveDir, args.path)];
        return target ? { path: target } : undefined;
      });
    },
  };
}

export interface BundleInfo {
  file: string;
  /** Minified bytes of every output file (with code splitting: the entry and all its chunks). */
  bytes: number;
  /** Of those, what init loads (the entry and its static imports); gzip is of these. */
  eagerBytes: number;
  gzipBytes: number;
  /** Minified bytes per package or source folder (from esbuild's metafile), largest first. */
  parts: Array<{ part: string; bytes: number }>;
}

/** `node_modules/@scope/pkg/...` → `@scope/pkg`; `functions/smtp/x.ts` → `functions/smtp`. */
function partOf(input: string): string {
  const frozenAt = input.indexOf('twin-src/');
  if (frozenAt >= 0) return partOf(input.slice(frozenAt + 'twin-src/'.length));
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
  plugins?: Plugin[];
  /** As deployed (scripts/build.ts SPLIT_OUTPUT): `import()` targets in chunk files next to `out`. Else one file. */
  splitting?: boolean;
}): Promise<BundleInfo> {
  mkdirSync(dirname(opts.out), { recursive: true });
  const base = esbuildOptions({ externalAwsSdk: opts.externalSdk, outdir: dirname(opts.out) });
  const { entryPoints: _entry, outdir, sourcemap: _map, ...shared } = base;
  const oneFile = Object.fromEntries(
    Object.entries(shared).filter(([k]) => !(k in SPLIT_OUTPUT)),
  ) as typeof shared;
  const result = await build({
    ...(opts.splitting ? { ...shared, outdir } : { ...oneFile, outfile: opts.out }),
    metafile: true,
    ...(opts.entry
      ? { entryPoints: [opts.entry] }
      : { stdin: { contents: opts.stdin!, resolveDir: REPO, loader: 'ts', sourcefile: 'core-entry.ts' } }),
    // Sizes are of the code alone (the deployed .map file is separate and not loaded at run time).
    sourcemap: false,
    plugins: opts.plugins ?? [],
  });
  // Every output file; what init loads: the entry and the chunks it imports statically (else the one file).
  const { bytes, eagerBytes, eagerFiles } = outputSizes(result.metafile, dirname(opts.out));
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
    eagerBytes,
    gzipBytes: gzipSync(Buffer.concat(eagerFiles.map((f) => readFileSync(f)))).length,
    parts: [...parts]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([part, n]) => ({ part, bytes: n })),
  };
}

/**
 * `ours`: the working tree's handler. `twin`: the frozen handler with nodemailer swapped in (the baseline).
 * `before`: the frozen handler as it was (our SMTP and MIME), i.e. ours before the cold-start cuts.
 * `ours` is code-split as deployed; `single`: the same tree in one file (as before the split); the twin and
 * `before` are one file each, `at:` revisions as they were deployed (split from 36b737d on, one file before).
 */
export type Variant = 'ours' | 'twin' | 'before' | 'single' | `at:${string}`;

/** `at:<rev>`: our handler as of that commit (to measure one cut against the next in the same run). */
export const atRevision = (v: Variant) => (v.startsWith('at:') ? v.slice(3) : undefined);

/** Whether the revision's build splits (its scripts/build.ts has `SPLIT_OUTPUT`), i.e. how it was deployed. */
function deployedSplit(rev: string): boolean {
  try {
    const build = execFileSync('git', ['show', `${rev}:scripts/build.ts`], { cwd: REPO, stdio: 'pipe' });
    return build.includes('SPLIT_OUTPUT');
  } catch {
    return false;
  }
}

const frozen = new Map<string, FrozenTwinSource>();

/** `outDir` must be inside the repository (an external SDK resolves from its node_modules). */
export function buildHandler(variant: Variant, externalSdk: boolean, outDir = OUT_DIR): Promise<BundleInfo> {
  const out = join(
    outDir,
    `${variant.replace(/[^\w.-]/g, '_')}${externalSdk ? '-sdk-external' : ''}`,
    'index.mjs',
  );
  if (variant === 'ours' || variant === 'single')
    return bundle({
      entry: join(REPO, 'functions/handlers/index.ts'),
      out,
      externalSdk,
      splitting: variant === 'ours',
    });
  const rev = atRevision(variant);
  if (rev) {
    const root = extractTree(REPO, outDir, rev, `src-${rev.replace(/[^\w.-]/g, '_')}`);
    const splitting = deployedSplit(rev);
    return bundle({ entry: join(root, 'functions/handlers/index.ts'), out, externalSdk, splitting });
  }
  let src = frozen.get(outDir);
  if (!src) {
    src = extractFrozenTwin(REPO, outDir);
    frozen.set(outDir, src);
  }
  const plugins = variant === 'twin' ? [twinPlugin(src.swaps)] : [];
  return bundle({ entry: src.entry, out, externalSdk, plugins });
}

/** The SMTP + MIME core alone (ours), or what replaces it in the twin (nodemailer). */
export function buildCore(variant: 'ours' | 'twin', outDir = OUT_DIR): Promise<BundleInfo> {
  return bundle({
    stdin:
      variant === 'ours'
        ? "export * from './functions/smtp/index.ts';\nexport * from './functions/mime/index.ts';\n"
        : "export * from './bench/twin/smtp.ts';\nexport * from './bench/twin/mime.ts';\n",
    out: join(outDir, `core-${variant}`, 'index.mjs'),
    externalSdk: true,
  });
}
