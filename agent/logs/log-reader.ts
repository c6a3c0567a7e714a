/**
 * Reads one container's log: the rotated files oldest first (`<log>.N` … `<log>.1`), then the
 * current file, joining partial records into lines, keeping the last `tail` lines at or after
 * `sinceMs`; then, when following, the lines written from now on. Following survives rotation:
 * the open file is read to its end before the new one is opened (a rotation renames the file and
 * the monitor reopens the path, so the old descriptor still holds the last lines).
 *
 * Memory is bounded: records and lines have a size limit, and tail keeps at most `tail` lines.
 */
import { watch, type FSWatcher, promises as fs } from 'node:fs';
import path from 'node:path';
import { LineJoiner, type LogEntry, RecordSplitter } from './log-format.js';
import { rotatedLogPath } from './log-rotation.js';

/** Rotated files looked for at most (`<log>.1` … `<log>.MAX_ROTATED_FILES`). */
export const MAX_ROTATED_FILES = 9;
/** How often a followed log is checked when no change notification came. */
export const FOLLOW_POLL_INTERVAL_MS = 250;
/** Bytes read per read(2). */
const READ_CHUNK_BYTES = 64 * 1024;

export interface ReadLogOptions {
  /** Last lines to return from what is already written; -1 = all. */
  tail: number;
  /** Only lines at or after this time (Unix ms); 0 = all. */
  sinceMs: number;
  follow: boolean;
  /** Ends the read (following or not). */
  signal: AbortSignal;
  /** When following: true once nothing more can be written (the container stopped or is gone). */
  finished?: () => Promise<boolean>;
  pollIntervalMs?: number;
}

/** The log's files in the order they were written. */
async function logFiles(logPath: string): Promise<string[]> {
  const found: string[] = [];
  for (let index = MAX_ROTATED_FILES; index >= 1; index -= 1) {
    const rotated = rotatedLogPath(logPath, index);
    if (await exists(rotated)) found.push(rotated);
  }
  return found;
}

const exists = (file: string): Promise<boolean> => fs.access(file).then(() => true, () => false);

/** An open log file read forward from `position`. */
class Cursor {
  private position = 0;
  private constructor(
    readonly handle: fs.FileHandle,
    readonly inode: number,
  ) {}

  static async open(file: string): Promise<Cursor | undefined> {
    try {
      const handle = await fs.open(file, 'r');
      return new Cursor(handle, (await handle.stat()).ino);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** The next chunk, or undefined at the end for now. A truncated file is read again from 0. */
  async read(): Promise<Buffer | undefined> {
    const buffer = Buffer.alloc(READ_CHUNK_BYTES);
    const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, this.position);
    if (bytesRead === 0) {
      if ((await this.handle.stat()).size < this.position) this.position = 0;
      return undefined;
    }
    this.position += bytesRead;
    return buffer.subarray(0, bytesRead);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

export async function* readLog(logPath: string, options: ReadLogOptions): AsyncGenerator<LogEntry> {
  const splitter = new RecordSplitter();
  const joiner = new LineJoiner();
  const wanted = (entry: LogEntry): boolean => options.sinceMs <= 0 || entry.timeMs >= options.sinceMs;
  const tail: LogEntry[] = [];
  const keep = (entry: LogEntry): void => {
    if (options.tail === 0 || !wanted(entry)) return;
    tail.push(entry);
    if (options.tail > 0 && tail.length > options.tail) tail.shift();
  };
  const drain = async function* (cursor: Cursor): AsyncGenerator<LogEntry> {
    for (let chunk = await cursor.read(); chunk !== undefined && !options.signal.aborted; chunk = await cursor.read()) {
      for (const record of splitter.push(chunk)) yield* joiner.push(record);
    }
  };
  // What is written already: tail applies to it as a whole.
  for (const file of await logFiles(logPath)) {
    const cursor = await Cursor.open(file);
    if (cursor === undefined) continue; // removed meanwhile (the oldest rotated out)
    try {
      for await (const entry of drain(cursor)) keep(entry);
    } finally {
      await cursor.close();
    }
  }
  let current = await Cursor.open(logPath);
  try {
    if (current !== undefined) for await (const entry of drain(current)) keep(entry);
    for (const entry of tail.splice(0)) {
      if (options.signal.aborted) return;
      yield entry;
    }
    if (!options.follow) return;
    const waiter = new ChangeWaiter(logPath, options.pollIntervalMs ?? FOLLOW_POLL_INTERVAL_MS, options.signal);
    try {
      while (!options.signal.aborted) {
        let progressed = false;
        if (current !== undefined) {
          for await (const entry of drain(current)) {
            progressed = true;
            if (wanted(entry)) yield entry;
          }
        }
        // Rotated (the path names another file now) or created: finish the old file, open the new.
        const inode = await fs.stat(logPath).then((stat) => stat.ino, () => undefined);
        if (inode !== undefined && inode !== current?.inode) {
          if (current !== undefined) for await (const entry of drain(current)) if (wanted(entry)) yield entry;
          await current?.close();
          current = await Cursor.open(logPath);
          continue;
        }
        if (progressed) continue;
        if (options.finished !== undefined && (await options.finished())) {
          // One last read: lines written just before the container stopped.
          if (current !== undefined) for await (const entry of drain(current)) if (wanted(entry)) yield entry;
          return;
        }
        await waiter.wait();
      }
    } finally {
      waiter.close();
    }
  } finally {
    await current?.close();
  }
}

/** Wakes on a change in the log's directory, after the poll interval, or on abort. */
class ChangeWaiter {
  private watcher: FSWatcher | undefined;
  private wake: (() => void) | undefined;

  constructor(
    logPath: string,
    private readonly pollIntervalMs: number,
    private readonly signal: AbortSignal,
  ) {
    const name = path.basename(logPath);
    try {
      this.watcher = watch(path.dirname(logPath), (_event, file) => {
        if (file === null || file.startsWith(name)) this.wake?.();
      });
      this.watcher.on('error', () => this.close());
    } catch {
      this.watcher = undefined; // polling alone still works
    }
  }

  wait(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.pollIntervalMs);
      this.signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}
