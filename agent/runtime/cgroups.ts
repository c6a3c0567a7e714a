/**
 * cgroup housekeeping (v1 and hybrid) around runc: where a container's cgroup directories are in every
 * mounted hierarchy, OOM evidence, removal of directories runc left behind, and SIGKILL of a
 * whole cgroup parent (the lab's "kill host").
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isErrno, readTextIfExists, waitFor } from './fs-util.js';

/** Rounds of "list pids, SIGKILL them" before giving up on a subtree that keeps forking. */
export const MAX_KILL_ROUNDS = 50;
/** Pause between kill rounds so the kernel can tear processes down. */
const KILL_ROUND_INTERVAL_MS = 10;
/** How long rmdir may keep failing with EBUSY while dying tasks leave a cgroup. */
const RMDIR_BUSY_TIMEOUT_MS = 2_000;
const RMDIR_RETRY_INTERVAL_MS = 10;

/**
 * Mount points of every cgroup hierarchy: each v1 hierarchy (e.g. /sys/fs/cgroup/memory,
 * .../systemd) and, in the hybrid layout, the v2 one (/sys/fs/cgroup/unified), where runc also
 * creates the container's directory.
 */
export async function cgroupMounts(): Promise<string[]> {
  const mounts = (await readTextIfExists('/proc/self/mounts')) ?? '';
  const points = mounts
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[2] === 'cgroup' || fields[2] === 'cgroup2')
    .map((fields) => fields[1])
    .filter((point): point is string => point !== undefined);
  return [...new Set(points)];
}

/** Every hierarchy's directory for `relativePath` (e.g. `/skiff/h1/<id>`), existing or not. */
export async function cgroupDirs(relativePath: string): Promise<string[]> {
  return (await cgroupMounts()).map((mount) => path.join(mount, relativePath));
}

/** Memory hierarchy's directory for a path, if that hierarchy is mounted. */
export async function memoryCgroupDir(relativePath: string): Promise<string | undefined> {
  const mount = (await cgroupMounts()).find((point) => path.basename(point).split(',').includes('memory'));
  return mount === undefined ? undefined : path.join(mount, relativePath);
}

/** True when the memory cgroup at relativePath recorded an OOM kill (v1 memory.oom_control). */
export async function cgroupRecordedOomKill(relativePath: string): Promise<boolean> {
  const dir = await memoryCgroupDir(relativePath);
  if (dir === undefined) return false;
  const control = (await readTextIfExists(path.join(dir, 'memory.oom_control')).catch(() => undefined)) ?? '';
  const match = /^oom_kill\s+(\d+)/m.exec(control);
  return match !== null && Number(match[1]) > 0;
}

/** Removes a cgroup directory and its children in every hierarchy (rmdir, deepest first). */
export async function removeCgroupTree(relativePath: string): Promise<void> {
  for (const dir of await cgroupDirs(relativePath)) await removeCgroupDir(dir);
}

async function removeCgroupDir(dir: string): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
  for (const entry of entries) {
    if (entry.isDirectory()) await removeCgroupDir(path.join(dir, entry.name));
  }
  let lastError: unknown;
  const removed = await waitFor(
    async () => {
      try {
        await fs.rmdir(dir);
        return true;
      } catch (error) {
        if (isErrno(error, 'ENOENT')) return true;
        if (!isErrno(error, 'EBUSY')) throw error;
        lastError = error;
        return false;
      }
    },
    RMDIR_BUSY_TIMEOUT_MS,
    RMDIR_RETRY_INTERVAL_MS,
  );
  if (!removed) throw new Error(`cannot remove cgroup ${dir}: ${String(lastError)}`);
}

/** Pids in the cgroup subtree at relativePath, across every hierarchy. */
export async function pidsInCgroupTree(relativePath: string): Promise<number[]> {
  const pids = new Set<number>();
  const visit = async (dir: string): Promise<void> => {
    const procs = await readTextIfExists(path.join(dir, 'cgroup.procs')).catch(() => undefined);
    for (const line of (procs ?? '').split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) if (entry.isDirectory()) await visit(path.join(dir, entry.name));
  };
  for (const dir of await cgroupDirs(relativePath)) await visit(dir);
  return [...pids];
}

/**
 * SIGKILLs every process in every hierarchy's subtree of `cgroupParent` (e.g. `/skiff-lab/h1`),
 * repeating until the subtree is empty (bounded by MAX_KILL_ROUNDS). Resolves with the number of
 * processes signalled. Containers die as if the host lost power; their monitors record 137.
 */
export async function killAllInCgroupParent(cgroupParent: string): Promise<number> {
  let signalled = 0;
  for (let round = 0; round < MAX_KILL_ROUNDS; round += 1) {
    const pids = (await pidsInCgroupTree(cgroupParent)).filter((pid) => pid !== process.pid);
    if (pids.length === 0) return signalled;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        signalled += 1;
      } catch (error) {
        if (!isErrno(error, 'ESRCH')) throw error;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, KILL_ROUND_INTERVAL_MS));
  }
  const left = await pidsInCgroupTree(cgroupParent);
  if (left.length > 0) throw new Error(`cannot kill cgroup ${cgroupParent}: ${left.length} processes left after ${MAX_KILL_ROUNDS} rounds`);
  return signalled;
}
