// The lab's shell: running commands, polling conditions, reading /proc, and cgroup v1 trees.
// Everything here talks to the kernel; the pure naming lives in naming.ts.
import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';

/** Longest a single helper command (ip, runc, umount) may run before it is killed. */
export const COMMAND_TIMEOUT_MS = 30_000;
/** Pause between two checks of a polled condition. */
export const POLL_INTERVAL_MS = 25;
/** Bound on "SIGKILL everything in a cgroup tree" rounds, for trees that keep forking. */
export const MAX_KILL_ROUNDS = 200;
/** How long rmdir of a cgroup may keep failing with EBUSY while dying tasks leave it. */
export const CGROUP_RMDIR_TIMEOUT_MS = 5_000;
const CGROUP_ROOT = '/sys/fs/cgroup';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command args` to completion and collects its output; never throws for a non-zero exit. */
export function run(command: string, args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? COMMAND_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => resolve({ code: 127, stdout: '', stderr: error.message }));
    child.on('close', (code, signal) => {
      resolve({ code: code ?? 128 + signalNumber(signal), stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() });
    });
    if (child.stdin !== null) {
      // A command that exits without reading its input must not crash us with EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input);
    }
  });
}

/** Runs a command that must succeed; the error quotes the command line and its stderr. */
export async function runChecked(command: string, args: readonly string[], action: string): Promise<string> {
  const result = await run(command, args);
  if (result.code !== 0) {
    throw new Error(`cannot ${action}: \`${[command, ...args].join(' ')}\` exited ${result.code}: ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** The number of a signal, for the shell convention "exit status 128 + signal". */
export function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : (constants.signals[signal] ?? 0);
}

/** Polls `condition` until it holds (true) or `timeoutMs` passes (false). */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/** True when `pid` exists and is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const stat = await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => undefined);
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** The argv of `pid`, or undefined if it is gone. */
export async function processArgv(pid: number): Promise<string[] | undefined> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => undefined);
  return raw === undefined ? undefined : raw.split('\0').filter((part) => part !== '');
}

/** Every pid on the machine. */
export async function listPids(): Promise<number[]> {
  return (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry)).map(Number);
}

/** Sends `signal`, ignoring a process that is already gone. */
export function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && error.code === 'ESRCH')) throw error;
  }
}

/**
 * Mount points of every cgroup hierarchy: the v1 ones (…/pids, …/memory, …/systemd) and, on a
 * hybrid layout, the v2 one (…/unified), where runc also makes a directory per container.
 */
export async function cgroupHierarchies(): Promise<string[]> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  const points = mounts
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => (fields[2] === 'cgroup' || fields[2] === 'cgroup2') && fields[1] !== undefined)
    .map((fields) => fields[1] as string);
  return [...new Set(points)];
}

/** Hierarchies a daemon cgroup is made in: pids (to find and kill) and name=systemd when present. */
export async function daemonCgroupHierarchies(): Promise<string[]> {
  const all = await cgroupHierarchies();
  return all.filter((point) => point.endsWith('/pids') || point.endsWith('/systemd'));
}

/** Creates `relativePath` in the daemon hierarchies; returns the cgroup.procs files to join it. */
export async function makeDaemonCgroup(relativePath: string): Promise<string[]> {
  const procsFiles: string[] = [];
  for (const hierarchy of await daemonCgroupHierarchies()) {
    const dir = join(hierarchy, relativePath);
    await mkdir(dir, { recursive: true });
    procsFiles.push(join(dir, 'cgroup.procs'));
  }
  if (procsFiles.length === 0) throw new Error(`cannot create cgroup ${relativePath}: no pids hierarchy is mounted under ${CGROUP_ROOT}`);
  return procsFiles;
}

/** Moves `pid` into `relativePath` in the daemon hierarchies (creating it). */
export async function joinDaemonCgroup(pid: number, relativePath: string): Promise<void> {
  for (const procs of await makeDaemonCgroup(relativePath)) await writeFile(procs, `${pid}\n`);
}

/** Every existing directory of `relativePath`'s subtree, across hierarchies, deepest first. */
export async function cgroupTreeDirs(relativePath: string): Promise<string[]> {
  const found: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
    if (entries === undefined) return;
    for (const entry of entries) if (entry.isDirectory()) await visit(join(dir, entry.name));
    found.push(dir);
  };
  for (const hierarchy of await cgroupHierarchies()) await visit(join(hierarchy, relativePath));
  return found;
}

/** Pids in `relativePath`'s subtree, across hierarchies. */
export async function pidsInCgroupTree(relativePath: string): Promise<number[]> {
  const pids = new Set<number>();
  for (const dir of await cgroupTreeDirs(relativePath)) {
    const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of procs.split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
  }
  pids.delete(process.pid);
  return [...pids];
}

/**
 * SIGKILLs every process in `relativePath`'s subtree, round after round, until it is empty: a
 * process forked between listing and killing is caught by the next round. Returns how many died.
 */
export async function killCgroupTree(relativePath: string): Promise<number> {
  let signalled = 0;
  for (let round = 0; round < MAX_KILL_ROUNDS; round += 1) {
    const alive: number[] = [];
    for (const pid of await pidsInCgroupTree(relativePath)) if (await isAlive(pid)) alive.push(pid);
    if (alive.length === 0) return signalled;
    for (const pid of alive) signalProcess(pid, 'SIGKILL');
    signalled += alive.length;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  throw new Error(`cannot kill cgroup ${relativePath}: processes still there after ${MAX_KILL_ROUNDS} rounds`);
}

/** Removes `relativePath`'s subtree in every hierarchy, deepest first, waiting out EBUSY. */
export async function removeCgroupTree(relativePath: string): Promise<void> {
  for (const dir of await cgroupTreeDirs(relativePath)) {
    let lastError: unknown;
    const removed = await waitFor(async () => {
      try {
        await rmdir(dir);
        return true;
      } catch (error) {
        if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return true;
        lastError = error;
        return false;
      }
    }, CGROUP_RMDIR_TIMEOUT_MS);
    if (!removed) throw new Error(`cannot remove cgroup ${dir}: ${String(lastError)}`);
  }
}

/** Mount points at or under any of `prefixes` (directories), deepest first. */
export async function mountsUnder(prefixes: readonly string[]): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    .map((point) => point.replace(/\\040/g, ' '))
    .filter((point) => prefixes.some((prefix) => point === prefix || point.startsWith(`${prefix}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}
