/**
 * The first step of `npm test` (`pretest`): finds every system tool the suite needs (test/support/tools.ts) and,
 * when one is missing, installs it — Debian packages with apt-get when running as root, Python packages with pip
 * when pip reaches its index, the Node.js 24 binary from the npm registry — and otherwise stops with one line per tool: what is missing and the command that
 * installs it. Silent and quick (file checks only, no process started) when everything is present.
 *
 *   node --import tsx scripts/test-setup.ts             find, install what is missing, exit 1 if anything still is
 *   node --import tsx scripts/test-setup.ts --dry-run   print the commands it would run; install nothing
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  executable,
  findTool,
  installCommand,
  npmInstallArgs,
  TOOLS,
  type Tool,
} from '../test/support/tools.ts';

const APT_GET = '/usr/bin/apt-get';

export interface Plan {
  /** Tools found: nothing to do. */
  present: Tool[];
  /** Commands to run, in order (argv arrays), each with the tools it brings. */
  commands: { argv: string[]; tools: Tool[] }[];
  /** Tools nothing here can install (not root, no apt-get). */
  manual: Tool[];
}

/** What to do about the tools missing under `env`. `root`/`apt` describe the machine (the tests vary them). */
export function plan(
  env: NodeJS.ProcessEnv = process.env,
  machine = { root: process.getuid?.() === 0, apt: executable(APT_GET) },
): Plan {
  const present: Tool[] = [];
  const apt: Tool[] = [];
  const pip: Tool[] = [];
  const npm: Tool[] = [];
  const manual: Tool[] = [];
  for (const tool of TOOLS) {
    if (findTool(tool, env)) present.push(tool);
    else if ('pip' in tool.install) pip.push(tool);
    else if ('npm' in tool.install) npm.push(tool);
    else if (machine.root && machine.apt) apt.push(tool);
    else manual.push(tool);
  }
  const commands: Plan['commands'] = [];
  if (apt.length > 0) {
    commands.push({ argv: [APT_GET, 'update', '-qq'], tools: [] });
    const pkgs = apt.map((t) => ('apt' in t.install ? t.install.apt : ''));
    commands.push({ argv: [APT_GET, 'install', '-y', '-qq', ...pkgs], tools: apt });
  }
  if (pip.length > 0) {
    const reqs = pip.map((t) => ('pip' in t.install ? t.install.pip : ''));
    // --retries 0: when the index is unreachable, say so at once instead of backing off for minutes
    const argv = ['python3', '-m', 'pip', 'install', '-q', '--retries', '0', '--timeout', '20', ...reqs];
    commands.push({ argv, tools: pip });
  }
  for (const tool of npm) {
    if (!('npm' in tool.install)) continue;
    const { npm: pkg, prefix } = tool.install;
    commands.push({ argv: ['npm', 'install', '-s', ...npmInstallArgs(prefix), pkg], tools: [tool] });
  }
  return { present, commands, manual };
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
export const shellLine = (argv: string[]) => argv.map(quote).join(' ');

/** One line per tool still missing: what it is for and the command that installs it. */
export function missingLines(tools: Tool[], root: boolean): string[] {
  return tools.map((t) => {
    const cmd = installCommand(t);
    const sudo = root || !cmd.startsWith('apt-get') ? '' : 'sudo ';
    return `test set-up: missing ${t.name} (${t.purpose}): install it with: ${sudo}${cmd}`;
  });
}

function main(argv: string[]): number {
  const dryRun = argv.includes('--dry-run');
  const root = process.getuid?.() === 0;
  const todo = plan();
  if (todo.commands.length === 0 && todo.manual.length === 0) return 0;
  for (const { argv: cmd, tools } of todo.commands) {
    const what = tools.length > 0 ? ` (for ${tools.map((t) => t.name).join(', ')})` : '';
    process.stderr.write(`test set-up: ${dryRun ? 'would run' : 'running'}: ${shellLine(cmd)}${what}\n`);
    if (dryRun) continue;
    const [file, ...args] = cmd as [string, ...string[]];
    const r = spawnSync(file, args, {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 15 * 60_000,
    });
    if (r.status !== 0) {
      process.stderr.write(
        `test set-up: ${shellLine(cmd)} failed (${r.error?.message ?? `exit ${r.status}`})\n`,
      );
    }
  }
  const stillMissing = dryRun ? todo.manual : TOOLS.filter((t) => findTool(t) === null).map((t) => t as Tool);
  for (const line of missingLines(stillMissing, root)) process.stderr.write(`${line}\n`);
  return stillMissing.length > 0 ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
