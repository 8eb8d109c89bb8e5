/**
 * The shell blocks of a Markdown document (```sh fences), and a bash runner for them against moto: the AWS CLI v2
 * (Debian's) is put first on PATH as `aws` with `--endpoint-url` added, since that version does not read
 * AWS_ENDPOINT_URL; everything else in a block runs as written.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MotoServer } from '../support/moto-server.ts';
import { requireTool } from '../support/tools.ts';

export interface ShellBlock {
  /** The nearest heading above the block. */
  heading: string;
  code: string;
}

export function shellBlocks(markdownFile: string): ShellBlock[] {
  const blocks: ShellBlock[] = [];
  let heading = '';
  let open: { indent: string; lines: string[] } | null = null;
  for (const line of readFileSync(markdownFile, 'utf8').split('\n')) {
    if (open) {
      if (line.trim() === '```') {
        blocks.push({ heading, code: open.lines.join('\n') });
        open = null;
      } else open.lines.push(line.startsWith(open.indent) ? line.slice(open.indent.length) : line);
      continue;
    }
    const fence = /^(\s*)```sh\s*$/.exec(line);
    if (fence) open = { indent: fence[1] ?? '', lines: [] };
    else if (/^#{1,6} /.test(line)) heading = line.replace(/^#+ /, '');
  }
  return blocks;
}

/** A directory whose `aws` is the AWS CLI v2 pointed at moto. */
export function awsCliShim(dir: string, moto: MotoServer): string {
  mkdirSync(dir, { recursive: true });
  const shim = join(dir, 'aws');
  writeFileSync(shim, `#!/bin/sh\nexec '${requireTool('aws-cli-v2')}' --endpoint-url '${moto.url}' "$@"\n`);
  chmodSync(shim, 0o755);
  return dir;
}

export interface ShellResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `script` with bash (-e -o pipefail) in `cwd`, the shim first on PATH, moto's credentials and region. */
export function runShell(
  script: string,
  opts: { cwd: string; shimDir: string; moto: MotoServer; env?: Record<string, string>; timeoutMs?: number },
): Promise<ShellResult> {
  const { AWS_REGION: _region, ...motoEnv } = opts.moto.env;
  return new Promise((resolve) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], {
      cwd: opts.cwd,
      env: {
        PATH: `${opts.shimDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        HOME: opts.cwd,
        LANG: 'C.UTF-8',
        // the region as a profile-less user often has it: only AWS_DEFAULT_REGION (section 5 must cope)
        ...motoEnv,
        AWS_PAGER: '',
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
