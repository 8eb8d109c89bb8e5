/**
 * The system tools the test suite needs, in one list: where each is looked for, and how it is installed when
 * missing. `scripts/test-setup.ts` (the first step of `npm test`) finds them all and installs what it can; tests
 * call `requireTool(name)`, which returns the tool's path or throws, naming the install command. A missing tool is
 * a failing test, never a skipped one.
 *
 * Each tool can be pointed elsewhere (or hidden, for the set-up's own tests) with its environment variable: when
 * set, only that path counts.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Lambda's nodejs24.x, from the npm registry: the `node` package only installs its platform package from an
 * install script (which npm 11 does not run), and as a dependency that platform package would link
 * node_modules/.bin/node and so move every npm script onto Node 24. The set-up step installs the platform
 * package alone into its own prefix instead.
 */
export const NODE24_PACKAGE = `node-${process.platform}-${process.arch}@24.22.3`;
export const NODE24_PREFIX = fileURLToPath(new URL('../../node_modules/.cache/node24', import.meta.url));
const NODE24_BIN = join(NODE24_PREFIX, 'node_modules', NODE24_PACKAGE.replace(/@[^@]*$/, ''), 'bin', 'node');

export interface Tool {
  /** Name used in messages and by requireTool(). */
  readonly name: string;
  /** What the suite uses it for (one short phrase, for the set-up's message). */
  readonly purpose: string;
  /** Environment variable that overrides where the tool is (only that path counts when set). */
  readonly env: string;
  /** Absolute paths tried in order, or a command name looked up on PATH. */
  readonly find: { readonly paths: readonly string[] } | { readonly command: string };
  /** How to install it: a Debian package (root + apt-get), a pip requirement, or an npm package in a prefix. */
  readonly install:
    | { readonly apt: string }
    | { readonly pip: string }
    | { readonly npm: string; readonly prefix: string };
}

export const TOOLS = [
  {
    name: 'chromium',
    purpose: 'browser end-to-end tests (playwright-core)',
    env: 'CHROMIUM_PATH',
    find: { paths: ['/usr/bin/chromium'] },
    install: { apt: 'chromium' },
  },
  {
    name: 'exim',
    purpose: 'the CHUNKING (BDAT) SMTP peer',
    env: 'EXIM_BINARY',
    find: { paths: ['/usr/sbin/exim4', '/usr/sbin/exim', '/usr/local/sbin/exim'] },
    install: { apt: 'exim4-daemon-heavy' },
  },
  {
    name: 'python3',
    purpose: "a never-accepting TCP listener and Python's email parser",
    env: 'PYTHON3_PATH',
    find: { command: 'python3' },
    install: { apt: 'python3' },
  },
  {
    name: 'script',
    purpose: 'a pseudo-terminal for the CLI password prompt',
    env: 'SCRIPT_PATH',
    find: { paths: ['/usr/bin/script'] },
    install: { apt: 'bsdutils' },
  },
  {
    name: 'dkimverify',
    purpose: "independent DKIM verification (Debian's python3-dkim)",
    env: 'DKIMVERIFY_PATH',
    find: { paths: ['/usr/bin/dkimverify'] },
    install: { apt: 'python3-dkim' },
  },
  {
    name: 'aws-cli-v2',
    purpose: 'the docs/deploy.md commands (AWS CLI v2)',
    env: 'AWS_CLI_V2_PATH',
    find: { paths: ['/usr/bin/aws'] },
    install: { apt: 'awscli' },
  },
  {
    name: 'spamassassin',
    purpose: 'spam rules on the mail we compose (local tests only, -L)',
    env: 'SPAMASSASSIN_PATH',
    find: { paths: ['/usr/bin/spamassassin'] },
    install: { apt: 'spamassassin' },
  },
  {
    name: 'ripmime',
    purpose: 'attachment file names as ripmime saves them',
    env: 'RIPMIME_PATH',
    find: { paths: ['/usr/bin/ripmime'] },
    install: { apt: 'ripmime' },
  },
  {
    name: 'munpack',
    purpose: 'attachment file names as munpack saves them',
    env: 'MUNPACK_PATH',
    find: { paths: ['/usr/bin/munpack'] },
    install: { apt: 'mpack' },
  },
  {
    name: 'moto_server',
    purpose: 'the emulated AWS for the deploy test',
    env: 'MOTO_SERVER_PATH',
    find: { command: 'moto_server' },
    install: { pip: 'moto[server]' },
  },
  {
    name: 'cfn-lint',
    purpose: 'independent validation of the synthesized templates',
    env: 'CFN_LINT_PATH',
    find: { command: 'cfn-lint' },
    install: { pip: 'cfn-lint' },
  },
  {
    name: 'node24',
    purpose: "Lambda's Node.js 24 for the deployed zip",
    env: 'NODE24_PATH',
    find: { paths: [NODE24_BIN] },
    install: { npm: NODE24_PACKAGE, prefix: NODE24_PREFIX },
  },
] as const satisfies readonly Tool[];

export type ToolName = (typeof TOOLS)[number]['name'];

export function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where the tool is, or null. `env` defaults to process.env (the set-up's tests pass their own). */
export function findTool(tool: Tool, env: NodeJS.ProcessEnv = process.env): string | null {
  const override = env[tool.env];
  if (override) return executable(override) ? override : null;
  if ('paths' in tool.find) return tool.find.paths.find(executable) ?? null;
  const { command } = tool.find;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, command))) return join(dir, command);
  }
  return null;
}

/** The shell command that installs the tool (what the set-up runs, or prints when it cannot). */
export function installCommand(tool: Tool): string {
  const { install } = tool;
  if ('apt' in install) return `apt-get install -y ${install.apt}`;
  if ('pip' in install) return `python3 -m pip install '${install.pip}'`;
  return `npm install ${npmInstallArgs(install.prefix).join(' ')} ${install.npm}`;
}

/** `npm install` options for a tool kept in its own prefix (no package.json or lock file of its own). */
export function npmInstallArgs(prefix: string): string[] {
  return ['--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund'];
}

export function toolByName(name: ToolName): Tool {
  return TOOLS.find((t) => t.name === name)!;
}

/** The tool's path; throws (failing the test) with the install command when it is missing. */
export function requireTool(name: ToolName): string {
  const tool = toolByName(name);
  const path = findTool(tool);
  if (path) return path;
  throw new Error(
    `${tool.name} not found (${tool.purpose}); install it with: ${installCommand(tool)} (npm test does this itself)`,
  );
}
