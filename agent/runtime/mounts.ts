/**
 * A container's bind, volume and tmpfs mounts as OCI mounts, with their host side made ready.
 *
 *   named volume      stateDir/volumes/<name>/_data: made on first use, filled then from the
 *                     image's content at the target (as Docker does), and never deleted by
 *                     container removal: it outlives tasks, their replacements and agent restarts.
 *   anonymous volume  <bundle>/volumes/<index>: deleted with the container's bundle.
 *   bind              an existing absolute host path.
 *   tmpfs             a fresh tmpfs, noexec,nosuid,nodev like Docker's, size and mode as asked.
 *
 * Mounts are ordered parents first, so a mount inside another lands on top of it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { normalizeContainerPath } from '../../common/container-options.js';
import { runChecked } from './command.js';
import { isErrno, pathExists } from './fs-util.js';
import type { OciMount } from './oci-spec.js';
import type { ContainerMount } from './types.js';

/** Deadline for copying an image directory into a new volume. */
const VOLUME_FILL_TIMEOUT_MS = 120_000;
const DEFAULT_TMPFS_MODE = 0o1777;

/** Where a host's named volumes live. */
export function volumesDir(stateDir: string): string {
  return path.join(stateDir, 'volumes');
}

/** The directory a named volume's data lives in. */
export function volumeDataDir(stateDir: string, name: string): string {
  return path.join(volumesDir(stateDir), name, '_data');
}

export interface MountContext {
  stateDir: string;
  bundleDir: string;
  /** The container's mounted rootfs, to fill new volumes from. */
  rootfs: string;
}

/** Prepares every mount's host side and returns the OCI mounts, parents first. */
export async function prepareMounts(mounts: readonly ContainerMount[], context: MountContext): Promise<OciMount[]> {
  const ordered = [...mounts.entries()].sort(([, a], [, b]) => depth(a.target) - depth(b.target));
  const result: OciMount[] = [];
  for (const [index, mount] of ordered) {
    const destination = normalizeContainerPath(mount.target);
    const access = mount.readOnly ? 'ro' : 'rw';
    switch (mount.type) {
      case 'bind':
        await requireHostPath(mount.source, index);
        result.push({ destination, type: 'bind', source: mount.source, options: ['rbind', 'rprivate', access] });
        break;
      case 'volume': {
        const source = mount.source === '' ? await anonymousVolume(context, index) : await namedVolume(context, mount.source, destination);
        result.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate', access] });
        break;
      }
      case 'tmpfs': {
        const mode = mount.tmpfsMode === 0 ? DEFAULT_TMPFS_MODE : mount.tmpfsMode;
        const options = ['noexec', 'nosuid', 'nodev', `mode=${mode.toString(8).padStart(4, '0')}`];
        if (mount.tmpfsSizeBytes > 0) options.push(`size=${mount.tmpfsSizeBytes}`);
        if (mount.readOnly) options.push('ro');
        result.push({ destination, type: 'tmpfs', source: 'tmpfs', options });
        break;
      }
      default: {
        const exhaustive: never = mount.type;
        throw new Error(`assertion failed: mount type ${String(exhaustive)} was not checked`);
      }
    }
  }
  return result;
}

function depth(target: string): number {
  return normalizeContainerPath(target).split('/').filter((part) => part !== '').length;
}

/** A mount this node cannot provide (a bind source it lacks): the request, not the node, is at fault. */
export class MountSourceError extends Error {}

async function requireHostPath(source: string, index: number): Promise<void> {
  try {
    await fs.stat(source);
  } catch (error) {
    const reason = isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR') ? 'does not exist on this node' : String(error);
    throw new MountSourceError(`mounts[${index}]: bind source ${source} ${reason}`);
  }
}

async function anonymousVolume(context: MountContext, index: number): Promise<string> {
  const dir = path.join(context.bundleDir, 'volumes', String(index));
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  return dir;
}

/** First uses in progress, by data directory: one agent process makes each volume once. */
const creating = new Map<string, Promise<string>>();

/**
 * The volume's data directory. On first use it is filled from the image's directory at the
 * target (when that is a real directory of the image): copied into a temporary sibling and
 * renamed into place, so a crash never leaves half a volume; concurrent first uses share one.
 */
async function namedVolume(context: MountContext, name: string, target: string): Promise<string> {
  const data = volumeDataDir(context.stateDir, name);
  if (await pathExists(data)) return data;
  const pending = creating.get(data);
  if (pending !== undefined) return pending;
  const made = createVolume(context, name, target, data).finally(() => creating.delete(data));
  creating.set(data, made);
  return made;
}

async function createVolume(context: MountContext, name: string, target: string, data: string): Promise<string> {
  if (await pathExists(data)) return data;
  const volumeDir = path.dirname(data);
  await fs.mkdir(volumeDir, { recursive: true, mode: 0o700 });
  const staging = await fs.mkdtemp(path.join(volumeDir, '.init-'));
  try {
    await fs.chmod(staging, 0o755);
    const imageDir = await imageDirectory(context.rootfs, target);
    if (imageDir !== undefined) {
      await runChecked(`fill volume ${name} from the image's ${target}`, 'cp', ['-a', '--', `${imageDir}/.`, `${staging}/`], { timeoutMs: VOLUME_FILL_TIMEOUT_MS });
    }
    await fs.rename(staging, data);
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
  return data;
}

/** The host path of `target` inside the rootfs when every component is a real directory (no symlink can lead out). */
async function imageDirectory(rootfs: string, target: string): Promise<string | undefined> {
  let current = rootfs;
  for (const part of target.split('/').filter((component) => component !== '')) {
    current = path.join(current, part);
    const stat = await fs.lstat(current).catch(() => undefined);
    if (stat === undefined || !stat.isDirectory()) return undefined;
  }
  return current === rootfs ? undefined : current;
}
