/**
 * The cold-start benchmark's quick mode inside `npm test`, so a refactor cannot break it: both bundles build
 * (ours and the frozen nodemailer twin) and one fresh process per (handler, request kind) serves its first
 * request under a Lambda CPU share. And the CPU-cap helper itself: the child really runs in the capped group and
 * is throttled. Figures are not asserted (they belong to `npm run bench -- --cold`); counts are.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../../bench/bundle.ts';
import { coldStartGoals, coldStartMarkdown } from '../../bench/cold-report.ts';
import { runColdStart } from '../../bench/coldstart.ts';
import { CpuCapUnavailable, openCpuCap, quotaFor } from '../../bench/cpu-cap.ts';

describe('CPU cap (bench/cpu-cap.ts)', () => {
  it('gives a memory size its Lambda share of one vCPU (1,769 MB)', () => {
    expect(quotaFor(1769)).toBe(100_000);
    expect(quotaFor(256)).toBe(14_471);
    expect(quotaFor(128)).toBe(7_236);
  });

  it('runs a process inside the capped group from its first instruction, and throttles it', () => {
    const cap = openCpuCap(256);
    try {
      expect(cap.mechanism).toMatch(/^cgroup v[12] /);
      const busy =
        "const t = Date.now(); while (Date.now() - t < 300); process.stdout.write(require('fs').readFileSync('/proc/self/cgroup', 'utf8'))";
      const [cmd, args] = cap.wrap([process.execPath, '-e', busy]);
      const seen = execFileSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
      expect(() => cap.verify(seen)).not.toThrow();
      // 300 ms of wall time spinning at 14.5 ms per 100 ms period: the quota must have bitten.
      expect(cap.stats().throttledPeriods).toBeGreaterThan(0);
      // A process outside the group is refused (no uncapped figure reported as capped).
      const own = execFileSync(
        process.execPath,
        ['-e', busy.replace(/^.*process\.stdout/, 'process.stdout')],
        {
          encoding: 'utf8',
        },
      );
      expect(() => cap.verify(own)).toThrow(CpuCapUnavailable);
    } finally {
      cap.close();
    }
  });
});

describe('cold start, quick mode (bench/coldstart.ts)', () => {
  it('builds ours and the frozen twin and serves every request kind once per handler under the cap', async () => {
    const result = await runColdStart({
      runs: 1,
      memorySizes: [1024],
      variants: ['ours', 'twin'],
      outDir: join(REPO, 'dist', 'bench-test'),
    });
    expect(result.cells.map((c) => `${c.variant} ${c.request}`)).toEqual([
      'ours direct',
      'ours urlencoded',
      'ours multipart',
      'twin direct',
      'twin urlencoded',
      'twin multipart',
    ]);
    for (const c of result.cells) {
      expect(c.failures, `${c.variant} ${c.request}`).toEqual([]);
      expect(c.runs).toBe(1);
    }
    // Ours names the SMTP server in its configuration: the connection opened at init carries the message
    // (one connection, not the opened one plus another). The frozen twin has no such hint.
    expect(result.hinted).toEqual(['ours']);
    for (const c of result.cells) expect(c.smtpConnections, `${c.variant} ${c.request}`).toBe(1);
    expect(result.caps).toHaveLength(1);
    expect(result.caps[0]!.periods).toBeGreaterThan(0);
    // The twin is nodemailer's; ours has none of it.
    expect(result.sizes['twin handler, SDK bundled']!.parts.map((p) => p.part)).toContain('nodemailer');
    expect(result.sizes['ours handler, SDK bundled']!.parts.map((p) => p.part)).not.toContain('nodemailer');
    const md = coldStartMarkdown(result);
    expect(md).toContain(result.mechanism);
    expect(coldStartGoals(result).map((g) => g.goal)).toEqual([
      'cold urlencoded form post at the 1024 MB share, process start → response, ours/twin',
      'init (import) at the 1024 MB share, ours/twin',
    ]);
  }, 180_000);
});
