/**
 * Secret and config files of a container. Each container with files gets a fresh tmpfs at
 * `<secretsDir>/<id>` (outside the state dir); each file is written there as `0`, `1`, … (so no
 * target can name a path outside it) with its owner and mode, and config.json bind-mounts it
 * read-only at its path inside the container. The data goes from memory to that tmpfs only:
 * nothing is written until the directory is verified to be a tmpfs mount point.
 *
 * The tmpfs lives as long as the container's bundle: Runtime.remove unmounts it, and a new
 * runtime unmounts those whose container is gone. An adopted container keeps its own.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { runChecked } from './command.js';
import { readDirIfExists, readTextIfExists } from './fs-util.js';
import { mountsUnder, unmountAllUnder } from './rootfs.js';
import type { ContainerFile } from './types.js';

/** Files per container at most. */
export const MAX_CONTAINER_FILES = 512;
/** Bytes of file data per container at most (managers allow 2 MiB per task). */
export const MAX_CONTAINER_FILES_BYTES = 16 * 1024 * 1024;
const PAGE_BYTES = 4096;
const MAX_FILE_MODE = 0o777;
const MAX_ID = 2 ** 32 - 1;
const MOUNT_TIMEOUT_MS = 15_000;

/** A file on the container's tmpfs and where the container sees it. */
export interface FileMount {
  containerPath: string;
  hostPath: string;
}

/** The first problem with `files` ("<field> …"), or undefined. */
export function containerFilesProblem(files: readonly ContainerFile[]): string | undefined {
  if (files.length > MAX_CONTAINER_FILES) return `files has ${files.length} entries, more than ${MAX_CONTAINER_FILES}`;
  const seen = new Set<string>();
  let totalBytes = 0;
  for (const file of files) {
    const where = file.containerPath;
    if (!where.startsWith('/') || where === '/' || path.posix.normalize(where) !== where || where.endsWith('/') || where.includes('\0')) {
      return `file path ${JSON.stringify(where)} must be absolute and normalized`;
    }
    if (seen.has(where)) return `two files have the path ${where}`;
    seen.add(where);
    for (const [field, value] of [['uid', file.uid], ['gid', file.gid]] as const) {
      if (!Number.isInteger(value) || value < 0 || value > MAX_ID) return `${field} of file ${where} must be an integer from 0 to ${MAX_ID}`;
    }
    if (!Number.isInteger(file.mode) || file.mode < 0 || file.mode > MAX_FILE_MODE) return `mode of file ${where} must be at most 0${MAX_FILE_MODE.toString(8)}`;
    totalBytes += file.data.length;
  }
  if (totalBytes > MAX_CONTAINER_FILES_BYTES) return `files hold ${totalBytes} bytes, more than ${MAX_CONTAINER_FILES_BYTES}`;
  return undefined;
}

/** Size of the tmpfs for `files`: each file rounded up to whole pages, plus one page. */
export function tmpfsSizeBytes(files: readonly ContainerFile[]): number {
  return files.reduce((sum, file) => sum + Math.ceil(file.data.length / PAGE_BYTES) * PAGE_BYTES, PAGE_BYTES);
}

/** The filesystem type of the topmost mount at exactly `point`, from mountinfo text. */
export function mountTypeAt(mountinfo: string, point: string): string | undefined {
  let type: string | undefined;
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    if (unescapeMountPath(fields[4] ?? '') !== point) continue;
    const separator = fields.indexOf('-');
    if (separator >= 0) type = fields[separator + 1];
  }
  return type;
}

/**
 * Mounts a fresh tmpfs at `dir` and writes `files` into it. Returns where each one is. On
 * failure the caller's teardown (unmountContainerFiles) cleans up.
 */
export async function mountContainerFiles(dir: string, files: readonly ContainerFile[]): Promise<FileMount[]> {
  await fs.mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
  await fs.mkdir(dir, { mode: 0o700 });
  await runChecked('mount a tmpfs for secret and config files', 'mount', ['-t', 'tmpfs', '-o', `size=${tmpfsSizeBytes(files)},mode=0700,nodev,nosuid`, 'tmpfs', dir], { timeoutMs: MOUNT_TIMEOUT_MS });
  const type = mountTypeAt((await readTextIfExists('/proc/self/mountinfo')) ?? '', dir);
  if (type !== 'tmpfs') throw new Error(`assertion failed: ${dir} is not a tmpfs mount (${type ?? 'not mounted'}); refusing to write secret data there`);
  const mounts: FileMount[] = [];
  for (const [index, file] of files.entries()) {
    const hostPath = path.join(dir, String(index));
    await fs.writeFile(hostPath, file.data, { mode: 0o600, flag: 'wx' });
    await fs.chown(hostPath, file.uid, file.gid);
    await fs.chmod(hostPath, file.mode);
    mounts.push({ containerPath: file.containerPath, hostPath });
  }
  return mounts;
}

/** Unmounts the container's tmpfs and removes its mount point. Idempotent. */
export async function unmountContainerFiles(dir: string): Promise<void> {
  await unmountAllUnder(dir);
  // Never recurse into a live mount: that would delete through it.
  const mounts = await mountsUnder(dir);
  if (mounts.length > 0) throw new Error(`still mounted: ${mounts.join(', ')}`);
  await fs.rm(dir, { recursive: true, force: true });
}

/**
 * Unmounts and removes the files of every container under `secretsDir` that `exists` says is
 * gone (left by a crash between a container's removal and its tmpfs's). Returns their ids.
 */
export async function removeOrphanedContainerFiles(secretsDir: string, exists: (containerId: string) => Promise<boolean>): Promise<string[]> {
  const removed: string[] = [];
  for (const containerId of await readDirIfExists(secretsDir)) {
    if (await exists(containerId)) continue;
    await unmountContainerFiles(path.join(secretsDir, containerId));
    removed.push(containerId);
  }
  return removed;
}

function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
