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

export interface Tool {
  /** Name used in messages and by requireTool(). */
  readonly name: string;
  /** What the suite uses it for (one short phrase, for the set-up's message). */
  readonly purpose: string;
  /** Environment variable that overrides where the tool is (only that path counts when set). */
  readonly env: string;
  /** Absolute paths tried in order, or a command name looked up on PATH. */
  readonly find: { readonly paths: readonly string[] } | { readonly command: string };
  /** How to install it: a Debian package (root + apt-get) or a pip requirement. */
  readonly install: { readonly apt: string } | { readonly pip: string };
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
  return 'apt' in tool.install
    ? `apt-get install -y ${tool.install.apt}`
    : `python3 -m pip install '${tool.install.pip}'`;
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
