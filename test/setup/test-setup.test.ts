/**
 * The set-up step of `npm test` (scripts/test-setup.ts): on this machine every tool is present, so it plans
 * nothing and prints nothing; with every tool hidden (each tool's override variable pointed at a missing file,
 * PATH emptied) it plans the exact apt-get and pip commands as root, and one "missing … install it with" line per
 * tool when it cannot install; and the Debian package names it would install resolve in apt (simulated, -s).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { missingLines, plan, shellLine } from '../../scripts/test-setup.ts';
import { findTool, NODE24_PACKAGE, NODE24_PREFIX, requireTool, TOOLS } from '../support/tools.ts';

const SCRIPT = fileURLToPath(new URL('../../scripts/test-setup.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** An environment in which no tool is found. */
function hiddenEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: '/nonexistent', HOME: process.env.HOME ?? '/tmp' };
  for (const t of TOOLS) env[t.env] = `/nonexistent/${t.name}`;
  return env;
}

function runSetup(args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, ...args], {
    cwd: REPO,
    env,
    encoding: 'utf8',
  });
}

const APT_PACKAGES = [
  'chromium',
  'exim4-daemon-heavy',
  'python3',
  'bsdutils',
  'python3-dkim',
  'awscli',
  'spamassassin',
  'ripmime',
  'mpack',
];
const NPM_NODE24 = `npm install -s --prefix ${NODE24_PREFIX} --no-save --no-package-lock --no-audit --no-fund ${NODE24_PACKAGE}`;

describe('npm test set-up step', () => {
  it('finds every tool on this machine: nothing to install, no output, exit 0', () => {
    const todo = plan();
    expect(todo.commands).toEqual([]);
    expect(todo.manual).toEqual([]);
    expect(todo.present.map((t) => t.name)).toEqual(TOOLS.map((t) => t.name));
    const r = runSetup([], process.env);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });

  it('as root with apt-get: plans apt-get update + one apt-get install, one pip install, one npm install', () => {
    const todo = plan(hiddenEnv(), { root: true, apt: true });
    expect(todo.present).toEqual([]);
    expect(todo.manual).toEqual([]);
    expect(todo.commands.map((c) => shellLine(c.argv))).toEqual([
      '/usr/bin/apt-get update -qq',
      `/usr/bin/apt-get install -y -qq ${APT_PACKAGES.join(' ')}`,
      "python3 -m pip install -q --retries 0 --timeout 20 'moto[server]' cfn-lint",
      NPM_NODE24,
    ]);
  });

  it('--dry-run prints those commands, one line each, and installs nothing', () => {
    const r = runSetup(['--dry-run'], hiddenEnv());
    const lines = r.stderr.trim().split('\n');
    if (process.getuid?.() === 0) {
      expect(lines).toEqual([
        'test set-up: would run: /usr/bin/apt-get update -qq',
        `test set-up: would run: /usr/bin/apt-get install -y -qq ${APT_PACKAGES.join(' ')} (for chromium, exim, python3, script, dkimverify, aws-cli-v2, spamassassin, ripmime, munpack)`,
        "test set-up: would run: python3 -m pip install -q --retries 0 --timeout 20 'moto[server]' cfn-lint (for moto_server, cfn-lint)",
        `test set-up: would run: ${NPM_NODE24} (for node24)`,
      ]);
      expect(r.status).toBe(0);
    } else {
      expect(lines.filter((l) => l.includes('missing'))).toHaveLength(APT_PACKAGES.length);
      expect(r.status).toBe(1);
    }
    expect(r.stdout).toBe('');
  });

  it('without root or apt-get: one line per tool, naming what is missing and the command (sudo for apt)', () => {
    const todo = plan(hiddenEnv(), { root: false, apt: true });
    expect(todo.manual.map((t) => t.name)).toEqual([
      'chromium',
      'exim',
      'python3',
      'script',
      'dkimverify',
      'aws-cli-v2',
      'spamassassin',
      'ripmime',
      'munpack',
    ]);
    expect(missingLines(todo.manual, false)).toEqual([
      'test set-up: missing chromium (browser end-to-end tests (playwright-core)): install it with: sudo apt-get install -y chromium',
      'test set-up: missing exim (the CHUNKING (BDAT) SMTP peer): install it with: sudo apt-get install -y exim4-daemon-heavy',
      "test set-up: missing python3 (a never-accepting TCP listener and Python's email parser): install it with: sudo apt-get install -y python3",
      'test set-up: missing script (a pseudo-terminal for the CLI password prompt): install it with: sudo apt-get install -y bsdutils',
      "test set-up: missing dkimverify (independent DKIM verification (Debian's python3-dkim)): install it with: sudo apt-get install -y python3-dkim",
      'test set-up: missing aws-cli-v2 (the docs/deploy.md commands (AWS CLI v2)): install it with: sudo apt-get install -y awscli',
      'test set-up: missing spamassassin (spam rules on the mail we compose (local tests only, -L)): install it with: sudo apt-get install -y spamassassin',
      'test set-up: missing ripmime (attachment file names as ripmime saves them): install it with: sudo apt-get install -y ripmime',
      'test set-up: missing munpack (attachment file names as munpack saves them): install it with: sudo apt-get install -y mpack',
    ]);
    expect(plan(hiddenEnv(), { root: true, apt: false }).manual).toHaveLength(9);
  });

  it('a tool pointed at a missing file is missing, and requireTool names the install command', () => {
    const exim = TOOLS.find((t) => t.name === 'exim')!;
    expect(findTool(exim, { EXIM_BINARY: '/nonexistent/exim' })).toBeNull();
    expect(findTool(exim, {})).toMatch(/exim/);
    const saved = process.env.EXIM_BINARY;
    process.env.EXIM_BINARY = '/nonexistent/exim';
    try {
      expect(() => requireTool('exim')).toThrow(
        /^exim not found \(the CHUNKING \(BDAT\) SMTP peer\); install it with: apt-get install -y exim4-daemon-heavy/,
      );
    } finally {
      if (saved === undefined) delete process.env.EXIM_BINARY;
      else process.env.EXIM_BINARY = saved;
    }
  });

  it('the Debian packages it installs resolve in apt (apt-get install -s: simulated, nothing changes)', () => {
    const r = spawnSync('apt-get', ['install', '-s', ...APT_PACKAGES], {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C' },
    });
    expect(r.stderr).not.toMatch(/Unable to locate|has no installation candidate/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^\d+ upgraded, \d+ newly installed, 0 to remove/m);
  });
});
