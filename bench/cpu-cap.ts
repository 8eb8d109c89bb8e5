/**
 * Run a process at the CPU share Lambda gives a memory size. Lambda allocates CPU in proportion to memory:
 * 1,769 MB is one vCPU, so 256 MB gets 256/1769 ≈ 0.145 of a vCPU. Here that share is a CFS bandwidth quota
 * (quota/period) on a cgroup made for the purpose:
 * - cgroup v1, `cpu` controller: `cpu.cfs_quota_us` of `cpu.cfs_period_us`;
 * - cgroup v2: `cpu.max` ("quota period") on a child of a cgroup whose `cpu` controller is enabled.
 * `openCpuCap` says which one it used (`mechanism`) and THROWS `CpuCapUnavailable` when neither can be set up
 * (not root, no cpu controller): a figure measured without the cap is not reported as a capped one.
 *
 * The group also gets a high scheduling weight (`cpu.shares` / `cpu.weight`): on a shared machine the quota,
 * not the neighbours, should set the pace — as on Lambda, where the share is the function's. The quota still
 * bounds it, so the process never gets more than its share.
 *
 * A process enters the group before `exec` (`wrap`: `sh -c 'echo $$ > cgroup.procs && exec "$@"'`), so every
 * instruction of its start-up runs under the cap. `verify(pidCgroupLine)` checks a child's /proc/self/cgroup.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Memory size that gets one full vCPU on Lambda (AWS Lambda developer guide, "Memory and computing power"). */
export const MB_PER_VCPU = 1769;
export const CFS_PERIOD_US = 100_000;

export class CpuCapUnavailable extends Error {
  override readonly name = 'CpuCapUnavailable';
}

export type CapMechanism = 'cgroup v1 cpu (cpu.cfs_quota_us)' | 'cgroup v2 (cpu.max)';

export interface CpuCapStats {
  periods: number;
  throttledPeriods: number;
  throttledMs: number;
}

export interface CpuCap {
  memoryMb: number;
  /** Fraction of one CPU: memoryMb / 1769. */
  share: number;
  quotaUs: number;
  periodUs: number;
  mechanism: CapMechanism;
  /** The cgroup directory. */
  dir: string;
  /** The cgroup path as /proc/<pid>/cgroup shows it (relative to the hierarchy root). */
  path: string;
  /** `[command, args]` that runs `argv` inside the group from its first instruction. */
  wrap(argv: string[]): [string, string[]];
  /** Throws unless `procSelfCgroup` (a child's /proc/self/cgroup text) puts it in this group. */
  verify(procSelfCgroup: string): void;
  stats(): CpuCapStats;
  /** Remove the group (it must be empty: its processes have exited). */
  close(): void;
}

export function quotaFor(memoryMb: number, periodUs = CFS_PERIOD_US): number {
  return Math.round((periodUs * memoryMb) / MB_PER_VCPU);
}

interface Mount {
  point: string;
  fstype: string;
  superOptions: string[];
  root: string;
}

function mounts(): Mount[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
      const [left, right = ''] = line.split(' - ');
      const l = left!.split(' ');
      const r = right.split(' ');
      return { root: l[3]!, point: l[4]!, fstype: r[0]!, superOptions: (r[2] ?? '').split(',') };
    });
}

/** This process's cgroup path in the v1 hierarchy that has `controller`, or the v2 path (`0::`). */
function ownPath(controller: string | undefined): string {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, ctrls, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (controller === undefined ? ctrls === '' : ctrls!.split(',').includes(controller)) return path;
  }
  return '/';
}

function write(file: string, value: string): void {
  writeFileSync(file, value);
}

function readStat(file: string): Map<string, number> {
  const m = new Map<string, number>();
  if (!existsSync(file)) return m;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v) m.set(k, Number(v));
  }
  return m;
}

function groupName(memoryMb: number): string {
  return `smtp-send-bench-${process.pid}-${memoryMb}mb-${Math.random().toString(36).slice(2, 8)}`;
}

function openV1(mount: Mount, memoryMb: number): CpuCap {
  // Create the group next to this process's own cpu group (inside a container that is the visible root).
  const rel = ownPath('cpu');
  const base = rel.startsWith(mount.root) ? rel.slice(mount.root.length) : '/';
  const name = groupName(memoryMb);
  const dir = join(mount.point, base, name);
  mkdirSync(dir);
  const quotaUs = quotaFor(memoryMb);
  try {
    write(join(dir, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
    write(join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
    write(join(dir, 'cpu.shares'), '10240');
  } catch (e) {
    rmdirSync(dir);
    throw e;
  }
  const path = join(rel, name);
  return capObject({
    memoryMb,
    quotaUs,
    dir,
    path,
    mechanism: 'cgroup v1 cpu (cpu.cfs_quota_us)',
    matches: (text) =>
      text.split('\n').some((l) => {
        const m = /^\d+:([^:]*):(.*)$/.exec(l);
        return !!m && m[1]!.split(',').includes('cpu') && m[2] === path;
      }),
    stats: () => {
      const s = readStat(join(dir, 'cpu.stat'));
      return {
        periods: s.get('nr_periods') ?? 0,
        throttledPeriods: s.get('nr_throttled') ?? 0,
        throttledMs: (s.get('throttled_time') ?? 0) / 1e6,
      };
    },
  });
}

function openV2(mount: Mount, memoryMb: number): CpuCap {
  const rel = ownPath(undefined);
  const base = rel.startsWith(mount.root) ? rel.slice(mount.root.length) : '/';
  const parent = join(mount.point, base);
  // A process may not sit in a group whose children have controllers ("no internal processes"), so the
  // capped group is a sibling under our parent when our own group holds processes; try ours, then its parent.
  const candidates = [parent, join(parent, '..')];
  let lastError: unknown;
  for (const p of candidates) {
    try {
      const controllers = readFileSync(join(p, 'cgroup.controllers'), 'utf8').split(/\s+/);
      if (!controllers.includes('cpu')) throw new CpuCapUnavailable(`no cpu controller in ${p}`);
      const enabled = readFileSync(join(p, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
      if (!enabled.includes('cpu')) write(join(p, 'cgroup.subtree_control'), '+cpu');
      const name = groupName(memoryMb);
      const dir = join(p, name);
      mkdirSync(dir);
      const quotaUs = quotaFor(memoryMb);
      try {
        write(join(dir, 'cpu.max'), `${quotaUs} ${CFS_PERIOD_US}`);
        write(join(dir, 'cpu.weight'), '1000');
      } catch (e) {
        rmdirSync(dir);
        throw e;
      }
      const path = `/${join(p.slice(mount.point.length), name).replace(/^\/+/, '')}`;
      return capObject({
        memoryMb,
        quotaUs,
        dir,
        path,
        mechanism: 'cgroup v2 (cpu.max)',
        matches: (text) => text.split('\n').some((l) => l === `0::${path}`),
        stats: () => {
          const s = readStat(join(dir, 'cpu.stat'));
          return {
            periods: s.get('nr_periods') ?? 0,
            throttledPeriods: s.get('nr_throttled') ?? 0,
            throttledMs: (s.get('throttled_usec') ?? 0) / 1e3,
          };
        },
      });
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

function capObject(o: {
  memoryMb: number;
  quotaUs: number;
  dir: string;
  path: string;
  mechanism: CapMechanism;
  matches: (procSelfCgroup: string) => boolean;
  stats: () => CpuCapStats;
}): CpuCap {
  const procs = join(o.dir, 'cgroup.procs');
  return {
    memoryMb: o.memoryMb,
    share: o.memoryMb / MB_PER_VCPU,
    quotaUs: o.quotaUs,
    periodUs: CFS_PERIOD_US,
    mechanism: o.mechanism,
    dir: o.dir,
    path: o.path,
    wrap: (argv) => ['/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', procs, ...argv]],
    verify(text) {
      if (!o.matches(text)) {
        throw new CpuCapUnavailable(`the process did not run in ${o.path} (its cgroups: ${text.trim()})`);
      }
    },
    stats: o.stats,
    close: () => {
      if (existsSync(o.dir)) rmdirSync(o.dir);
    },
  };
}

/**
 * A cgroup capped at `memoryMb`'s Lambda CPU share. cgroup v1's `cpu` controller when mounted, else cgroup v2's
 * `cpu.max`. Throws `CpuCapUnavailable` (with every reason) when neither can be used.
 */
export function openCpuCap(memoryMb: number): CpuCap {
  if (!(memoryMb >= 128 && memoryMb <= 10_240)) throw new RangeError(`memory size ${memoryMb} MB`);
  const reasons: string[] = [];
  let all: Mount[] = [];
  try {
    all = mounts();
  } catch (e) {
    reasons.push(`cannot read /proc/self/mountinfo: ${(e as Error).message}`);
  }
  const v1 = all.find((m) => m.fstype === 'cgroup' && m.superOptions.includes('cpu'));
  if (v1) {
    try {
      return openV1(v1, memoryMb);
    } catch (e) {
      reasons.push(`cgroup v1 cpu at ${v1.point}: ${(e as Error).message}`);
    }
  } else reasons.push('no cgroup v1 hierarchy with the cpu controller');
  const v2 = all.find((m) => m.fstype === 'cgroup2');
  if (v2) {
    try {
      return openV2(v2, memoryMb);
    } catch (e) {
      reasons.push(`cgroup v2 at ${v2.point}: ${(e as Error).message}`);
    }
  } else reasons.push('no cgroup v2 mount');
  throw new CpuCapUnavailable(
    `cannot cap the CPU at ${memoryMb} MB's Lambda share (needs root and a cgroup cpu controller): ${reasons.join('; ')}`,
  );
}
