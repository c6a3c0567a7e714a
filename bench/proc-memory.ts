/**
 * Process memory as Linux reports it, for the benchmarks: VmRSS / RssAnon / RssFile from
 * /proc/<pid>/status and Pss from /proc/<pid>/smaps_rollup. The parsers are pure; the readers
 * return undefined for a process that has gone.
 */
import { readFile, readdir } from 'node:fs/promises';

/** One process's memory, in KiB as the kernel prints it. */
export interface ProcessMemory {
  rssKib: number;
  rssAnonKib: number | undefined;
  rssFileKib: number | undefined;
  /** Proportional set size (shared pages divided among their users); undefined without smaps_rollup. */
  pssKib: number | undefined;
}

/** The value in kB of field `name` (e.g. `VmRSS`) in /proc status or smaps text; undefined if absent. */
export function procKib(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB$`, 'm').exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** KiB to MiB with one decimal. */
export function kibToMib(kib: number): number {
  return Math.round((kib / 1024) * 10) / 10;
}

/** The memory of `pid`, or undefined when it has exited (or is a kernel thread without VmRSS). */
export async function processMemory(pid: number): Promise<ProcessMemory | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  if (status === undefined) return undefined;
  const rssKib = procKib(status, 'VmRSS');
  if (rssKib === undefined) return undefined;
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  return { rssKib, rssAnonKib: procKib(status, 'RssAnon'), rssFileKib: procKib(status, 'RssFile'), pssKib: procKib(rollup, 'Pss') };
}

/** Pids of every process whose command name (/proc/<pid>/comm) is `comm` and whose command line contains `needle`. */
export async function findProcesses(comm: string, needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const name = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (name.trim() !== comm) continue;
    const commandLine = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (commandLine.split('\0').join(' ').includes(needle)) pids.push(Number(entry));
  }
  return pids;
}

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ, 100 on every Linux port we run on). */
const USER_HZ = 100;

/**
 * User + system CPU seconds in a /proc/<pid>/stat line (fields 14 and 15, counted after the
 * command name, which may itself hold spaces and parentheses); undefined if the line is malformed.
 */
export function statCpuSeconds(text: string): number | undefined {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  return Number.isFinite(user) && Number.isFinite(system) && fields.length > 12 ? (user + system) / USER_HZ : undefined;
}

/** CPU seconds `pid` has used so far, or undefined when it has exited. */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : statCpuSeconds(text);
}

/** Per-process CPU seconds between two readings of CPU seconds per process, rounded to 0.1 s, with their total. */
export function cpuUsedSince(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const used: Record<string, number> = {};
  let total = 0;
  for (const [name, seconds] of Object.entries(after)) {
    const spent = Math.max(0, seconds - (before[name] ?? 0));
    used[name] = Math.round(spent * 10) / 10;
    total += spent;
  }
  used['total'] = Math.round(total * 10) / 10;
  return used;
}

/**
 * CPU microseconds per operation, per process, between two readings of CPU seconds per process
 * (rounded to whole microseconds), with their total. A process missing from `after` (it exited)
 * is left out; `operations` must be positive.
 */
export function cpuMicrosPerOperation(before: Record<string, number>, after: Record<string, number>, operations: number): Record<string, number> {
  if (!(operations > 0)) throw new Error(`cannot divide CPU time by ${operations} operations`);
  const perOperation: Record<string, number> = {};
  let total = 0;
  for (const [name, seconds] of Object.entries(after)) {
    const micros = (Math.max(0, seconds - (before[name] ?? 0)) * 1e6) / operations;
    perOperation[name] = Math.round(micros);
    total += micros;
  }
  perOperation['total'] = Math.round(total);
  return perOperation;
}
