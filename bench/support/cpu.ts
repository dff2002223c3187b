/**
 * CPU accounting (Linux /proc): which process the machine's cores are spent in. Each bench names
 * its processes by role (load generator, agent, fakes, redis...) and samples them before and
 * after a measured window.
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';

/** Per process role, plus `machine`: every core's busy time, so other load on the machine shows. */
export type CpuSample<Role extends string> = Partial<Record<Role | 'machine', number>>;

/** Busy (not idle, not iowait) CPU milliseconds of the whole machine, or undefined off Linux. */
function machineCpuMs(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string;
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return (ticks.reduce((a, b) => a + b, 0) - idle) * 10;
  } catch {
    return undefined;
  }
}

/** User plus system CPU milliseconds a process has used, or undefined off Linux. */
function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** CPU milliseconds used so far by each process of `pids` (role to pid), and by the machine. */
export function sampleCpu<Role extends string>(pids: Partial<Record<Role, number>>): CpuSample<Role> {
  const sample: CpuSample<Role> = {};
  for (const role of Object.keys(pids) as Role[]) {
    const pid = pids[role];
    const value = pid === undefined ? undefined : cpuMs(pid);
    if (value !== undefined) sample[role] = value;
  }
  const machine = machineCpuMs();
  if (machine !== undefined) sample.machine = machine;
  return sample;
}

/** CPU percent of one core for each process (and the machine) between two samples. */
export function cpuPercent<Role extends string>(
  before: CpuSample<Role>,
  after: CpuSample<Role>,
  elapsedMs: number,
): CpuSample<Role> {
  const out: CpuSample<Role> = {};
  for (const role of Object.keys(before) as (Role | 'machine')[]) {
    const a = before[role];
    const b = after[role];
    if (a !== undefined && b !== undefined) out[role] = (100 * (b - a)) / elapsedMs;
  }
  return out;
}

/** What the rest of the machine used meanwhile (other jobs), in percent of one core; NaN off Linux. */
export function otherProcessesCpu(cpu: CpuSample<string>): number {
  let others = cpu.machine ?? Number.NaN;
  for (const [role, value] of Object.entries(cpu)) if (role !== 'machine') others -= value ?? 0;
  return others;
}

/** The pid of the redis-server at `url`, from INFO server. */
export async function redisPid(url: string): Promise<number | undefined> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await client.connect();
    const info = await client.info('server');
    const match = /process_id:(\d+)/.exec(info);
    return match ? Number(match[1]) : undefined;
  } finally {
    client.disconnect();
  }
}
