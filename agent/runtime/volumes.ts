/**
 * `skiff volume ls|rm|prune` on one node: the named local volumes under stateDir/volumes (see
 * mounts.ts for how they are made). A volume is in use while a task assigned to this node mounts
 * it, whatever that task's state; rm refuses such a volume unless forced, prune skips it.
 * Removal first renames the volume out of its name (one atomic step), then deletes the data, so
 * a crash halfway never leaves a half-emptied volume under its name: the next start (or the
 * next ls) finishes the job.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { VolumeRequest, VolumeResponse, VolumeSummary } from '../../proto/skiff/v1/attach.js';
import { VOLUME_NAME } from '../../common/container-options.js';
import { isErrno } from './fs-util.js';
import { volumeDataDir, volumesDir } from './mounts.js';
import { compareText } from '../../common/compare.js';

/** Prefix of a volume being removed (volume names start with a letter or digit). */
const REMOVING_PREFIX = '.removing-';

export class VolumeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VolumeError';
  }
}

export interface VolumeOpsDeps {
  stateDir: string;
  /** Volume names mounted by the tasks assigned to this node (one entry per task and mount). */
  volumesInUse: () => string[];
}

export type VolumeOps = (request: VolumeRequest) => Promise<VolumeResponse>;

/** The node's volumes, by name, with the count of its tasks that mount each. */
export async function listVolumes(stateDir: string, inUse: readonly string[]): Promise<VolumeSummary[]> {
  const root = volumesDir(stateDir);
  const entries = await fs.readdir(root, { withFileTypes: true }).catch((error: unknown) => {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  });
  const volumes: VolumeSummary[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith(REMOVING_PREFIX)) {
      await fs.rm(path.join(root, entry.name), { recursive: true, force: true });
      continue;
    }
    if (!entry.isDirectory() || !VOLUME_NAME.test(entry.name)) continue;
    // A volume exists once its data directory does (a crash during its first fill leaves none).
    const stats = await fs.stat(volumeDataDir(stateDir, entry.name)).catch(() => undefined);
    if (stats === undefined) continue;
    volumes.push({ name: entry.name, createdMs: Math.round(stats.birthtimeMs || stats.ctimeMs), tasks: inUse.filter((name) => name === entry.name).length });
  }
  return volumes.sort((a, b) => compareText(a.name, b.name));
}

/** Removes one volume; refused while a task here mounts it, unless `force`. */
export async function removeVolume(stateDir: string, name: string, options: { force: boolean; inUse: readonly string[] }): Promise<void> {
  if (!VOLUME_NAME.test(name)) throw new VolumeError(`cannot remove volume ${JSON.stringify(name)}: not a volume name (letters, digits, '_', '.', '-', starting with a letter or digit)`);
  const users = options.inUse.filter((used) => used === name).length;
  if (users > 0 && !options.force) throw new VolumeError(`cannot remove volume "${name}": ${users} task(s) on this node use it (remove or move them first, or use --force)`);
  const dir = path.join(volumesDir(stateDir), name);
  const trash = path.join(volumesDir(stateDir), `${REMOVING_PREFIX}${name}-${randomBytes(4).toString('hex')}`);
  try {
    await fs.rename(dir, trash);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) throw new VolumeError(`cannot remove volume "${name}": no such volume on this node`);
    throw error;
  }
  await fs.rm(trash, { recursive: true, force: true });
}

export function createVolumeOps(deps: VolumeOpsDeps): VolumeOps {
  return async (request) => {
    const op = request.op;
    switch (op?.$case) {
      case 'list':
        return { volumes: await listVolumes(deps.stateDir, deps.volumesInUse()), removed: [] };
      case 'remove':
        await removeVolume(deps.stateDir, op.value.name, { force: op.value.force, inUse: deps.volumesInUse() });
        return { volumes: [], removed: [op.value.name] };
      case 'prune': {
        const inUse = deps.volumesInUse();
        const unused = (await listVolumes(deps.stateDir, inUse)).filter((volume) => volume.tasks === 0);
        const removed: string[] = [];
        for (const volume of unused) {
          // Checked again per volume: a task may have been assigned meanwhile.
          await removeVolume(deps.stateDir, volume.name, { force: false, inUse: deps.volumesInUse() }).then(
            () => removed.push(volume.name),
            (error: unknown) => {
              if (!(error instanceof VolumeError)) throw error;
            },
          );
        }
        return { volumes: [], removed };
      }
      case undefined:
        throw new VolumeError('cannot run volume command: the request names no operation');
      default: {
        const unknown: never = op;
        throw new Error(`unknown volume op ${JSON.stringify(unknown)}`);
      }
    }
  };
}
