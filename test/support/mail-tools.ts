/**
 * Independent readers of the mail we send, each a separate program: Python's `email` (policy.strict, via
 * mail-check.py), SpamAssassin (`spamassassin -L`, local tests only, no network), ripmime and munpack (which file
 * names a mail client's "save attachment" would get). A missing tool fails the test that needs it (no skips).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './tools.ts';

const CHECKER = join(import.meta.dirname, 'mail-check.py');

export interface PythonPart {
  contentType: string;
  charset: string | null;
  filename: string | null;
  /** The Content-Type `name` parameter, decoded. */
  name: string | null;
  disposition: string | null;
  /** Parameter names as written (duplicates would show twice). */
  contentTypeParams: string[];
  dispositionParams: string[];
  size?: number;
  text?: string;
}

export interface PythonView {
  /** Every defect Python's parser registered (message, parts, header fields). */
  defects: Array<{ where: string; header?: string; defect: string }>;
  headers: Record<string, string[]>;
  addresses: Record<string, Array<{ name: string; address: string }>>;
  parts: PythonPart[];
}

function run(file: string, args: string[], input?: Uint8Array, cwd?: string): string {
  return execFileSync(file, args, {
    input,
    cwd,
    encoding: 'utf8',
    timeout: 30_000,
    maxBuffer: 16 * 1024 * 1024,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** What Python's `email` package (policy.strict) reads from the message. */
export function pythonEmail(bytes: Uint8Array): PythonView {
  return JSON.parse(run(requireTool('python3'), [CHECKER], bytes)) as PythonView;
}

/** `pythonEmail` for many messages in one Python process. */
export function pythonEmails(messages: Uint8Array[]): PythonView[] {
  const input = Buffer.from(JSON.stringify(messages.map((m) => Buffer.from(m).toString('base64'))));
  return JSON.parse(run(requireTool('python3'), [CHECKER, '--many'], input)) as PythonView[];
}

function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'mail-tools-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** SpamAssassin's verdict with local tests only (`-L`): the score and the names of the rules that fired. */
export function spamAssassin(bytes: Uint8Array): { score: number; rules: string[] } {
  return withTempDir((dir) => {
    const prefs = join(dir, 'user_prefs');
    writeFileSync(prefs, '');
    const out = run(requireTool('spamassassin'), ['-L', '-p', prefs], bytes);
    const head = out.slice(0, out.search(/\r?\n\r?\n/));
    const status = /^X-Spam-Status: (.*(?:\r?\n[ \t].*)*)/m.exec(head);
    if (!status) throw new Error('spamassassin wrote no X-Spam-Status header');
    const value = status[1]!.replace(/\r?\n[ \t]+/g, ' ');
    const score = Number(/score=(-?[\d.]+)/.exec(value)?.[1]);
    // `tests=A,B,\n\tC autolearn=…`: SpamAssassin folds the list after commas.
    const tests = /tests=(.*?)(?: autolearn=| version=|$)/.exec(value)?.[1] ?? '';
    const rules = tests.split(/,\s*/).filter((r) => r !== '' && r !== 'none');
    return { score, rules };
  });
}

/** The files ripmime writes for the message's parts (its text-part files `textfileN` left out). */
export function ripmimeFiles(bytes: Uint8Array): string[] {
  return withTempDir((dir) => {
    writeFileSync(join(dir, 'in.eml'), bytes);
    mkdirSync(join(dir, 'out'));
    run(requireTool('ripmime'), ['-i', 'in.eml', '-d', 'out'], undefined, dir);
    return readdirSync(join(dir, 'out'))
      .filter((f) => !/^textfile\d+$/.test(f))
      .sort();
  });
}

/** The files munpack writes (its `.desc` files left out). */
export function munpackFiles(bytes: Uint8Array): string[] {
  return withTempDir((dir) => {
    writeFileSync(join(dir, 'in.eml'), bytes);
    mkdirSync(join(dir, 'out'));
    run(requireTool('munpack'), ['-f', '-q', '-C', join(dir, 'out'), join(dir, 'in.eml')]);
    return readdirSync(join(dir, 'out'))
      .filter((f) => !f.endsWith('.desc'))
      .sort();
  });
}
