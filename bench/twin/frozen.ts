/**
 * The nodemailer twin is FROZEN: the baseline a user would otherwise deploy — nodemailer, the Secrets Manager
 * client with its default configuration (default credential provider chain), the Powertools logger, valibot
 * and busboy, everything imported eagerly at init — must not follow our handler as we optimise it.
 *
 * So its handler source is not the working tree's: it is `functions/` as of TWIN_COMMIT (main when the
 * cold-start work began), extracted with `git archive` into dist/bench/twin-src/. Only the two modules a
 * nodemailer handler replaces are swapped in (bench/twin/smtp.ts and bench/twin/mime.ts, copied into the
 * extracted tree so their relative imports resolve to the frozen `functions/`). Packages resolve from this
 * repository's node_modules (bundled the same way as ours: `esbuildOptions()` of scripts/build.ts).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** main at the start of the cold-start work (issue 16), before any of its cuts. */
export const TWIN_COMMIT = '70d63c86b0e4f85c5f9a332aea3783b6ed7c4d88';

export interface FrozenTwinSource {
  root: string;
  entry: string;
  /** Frozen module → its nodemailer replacement. */
  swaps: Record<string, string>;
}

/** `functions/` of `rev` (a commit) extracted under `outDir/<name>` (fails loudly when git or the commit is missing). */
export function extractTree(repo: string, outDir: string, rev: string, name: string): string {
  const root = join(outDir, name);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  let archive: Buffer;
  try {
    archive = execFileSync('git', ['archive', '--format=tar', rev, 'functions'], {
      cwd: repo,
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`cannot extract functions/ at ${rev.slice(0, 12)} (git archive): ${stderr || e}`);
  }
  execFileSync('tar', ['-x', '-C', root], { input: archive });
  return root;
}

/** The frozen handler source with the nodemailer modules copied in next to it. */
export function extractFrozenTwin(repo: string, outDir: string): FrozenTwinSource {
  const root = extractTree(repo, outDir, TWIN_COMMIT, 'twin-src');
  mkdirSync(join(root, 'bench/twin'), { recursive: true });
  for (const f of ['smtp.ts', 'mime.ts'])
    copyFileSync(join(repo, 'bench/twin', f), join(root, 'bench/twin', f));
  return {
    root,
    entry: join(root, 'functions/handlers/index.ts'),
    swaps: {
      [join(root, 'functions/smtp/index.ts')]: join(root, 'bench/twin/smtp.ts'),
      [join(root, 'functions/mime/index.ts')]: join(root, 'bench/twin/mime.ts'),
    },
  };
}
