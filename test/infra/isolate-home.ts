/**
 * Import FIRST in infra test files: aws-cdk-lib keeps an asset fingerprint cache under `$HOME/.cdk` (path fixed
 * when the module loads). Point HOME at a temp dir for this test process so tests leave nothing behind; the
 * returned cleanup removes it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const home = mkdtempSync(join(tmpdir(), 'smtp-infra-home-'));
process.env.HOME = home;

export function removeIsolatedHome(): void {
  rmSync(home, { recursive: true, force: true });
}
