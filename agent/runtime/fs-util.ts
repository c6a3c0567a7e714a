/** Small filesystem and process helpers shared by the runtime and the network code. */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Writes a file via a uniquely named temporary sibling and rename, so readers never see half a file. */
export async function writeFileAtomic(filePath: string, content: string): Promise<void> {
  const temporary = path.join(path.dirname(filePath), `.${path.basename(filePath)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await fs.writeFile(temporary, content, { mode: 0o644 });
  await fs.rename(temporary, filePath);
}

/** The file's text, or undefined when it does not exist. */
export async function readTextIfExists(filePath: string): Promise<string | undefined> {
  try {
    return await fs.readFile(filePath, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return undefined;
    throw error;
  }
}

export async function pathExists(filePath: string): Promise<boolean> {
  try {
    await fs.lstat(filePath);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return false;
    throw error;
  }
}

/** Directory entries, or [] when the directory does not exist. */
export async function readDirIfExists(dirPath: string): Promise<string[]> {
  try {
    return await fs.readdir(dirPath);
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return [];
    throw error;
  }
}

export function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** True when a process with this pid exists (zombies included). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return isErrno(error, 'EPERM');
  }
}

/** The process's argv from /proc, or undefined when it is gone. */
export async function processArgv(pid: number): Promise<string[] | undefined> {
  const raw = await readTextIfExists(`/proc/${pid}/cmdline`).catch(() => undefined);
  if (raw === undefined) return undefined;
  return raw.split('\0').filter((part) => part.length > 0);
}

/** Every numeric entry of /proc. */
export async function listPids(): Promise<number[]> {
  const entries = await fs.readdir('/proc');
  return entries.filter((entry) => /^\d+$/.test(entry)).map(Number);
}

/** Resolves once `condition` is true, polling every `intervalMs`; false when the deadline passes first. */
export async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(1, deadline - Date.now()))));
  }
}
