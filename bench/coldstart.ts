/**
 * Cold start: the esbuild bundle of our Lambda handler vs a faithful twin written with nodemailer
 * (bench/twin/). Filled in once functions/handlers/index.ts and scripts/build.ts exist.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface ColdStartGoal {
  goal: string;
  target: string;
  measured: string;
  met: boolean | null;
}

export interface ColdStartResult {
  markdown: string;
  goals: ColdStartGoal[];
  [key: string]: unknown;
}

const repo = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));

export async function runColdStart(_opts: { quick: boolean }): Promise<ColdStartResult | string> {
  for (const p of ['functions/handlers/index.ts', 'scripts/build.ts']) {
    if (!existsSync(repo(p))) return `${p} does not exist yet`;
  }
  return 'not implemented yet';
}
