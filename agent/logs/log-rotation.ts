/**
 * Size-based rotation of container logs. conmon's own `--log-size-max` truncates the log in place
 * (it reopens the path, dropping what was there), so the agent rotates instead: when a running
 * container's log passes `maxBytes`, `<log>.N-1` … `<log>` move one step up (`<log>.1` is the
 * newest old file, `<log>.maxFiles` the oldest kept), then conmon is told through its control
 * FIFO (`<bundle>/ctl`, message `2 0 0`: reopen the log) to start a new file at the path. Until it
 * does, it keeps writing to the renamed file, so no line is lost and the order holds.
 */
import { constants, promises as fs } from 'node:fs';
import type { Logger } from '../../common/log.js';

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Old files kept beside the current one. */
export const DEFAULT_LOG_MAX_FILES = 2;
export const LOG_ROTATION_CHECK_INTERVAL_MS = 2_000;
/** conmon's control FIFO message type that reopens the log files (conmon's REOPEN_LOGS_EVENT). */
const REOPEN_LOGS_MESSAGE = '2 0 0\n';

/** `<log>.index` (index ≥ 1); rotated files are read oldest (highest index) first. */
export function rotatedLogPath(logPath: string, index: number): string {
  return `${logPath}.${index}`;
}

/**
 * Shifts the files one step up and renames the current log to `<log>.1`, dropping what falls past
 * `maxFiles`. Returns false when there was no log to rotate.
 */
export async function shiftLogFiles(logPath: string, maxFiles: number): Promise<boolean> {
  if (!(await fs.access(logPath).then(() => true, () => false))) return false;
  await fs.rm(rotatedLogPath(logPath, maxFiles), { force: true });
  for (let index = maxFiles - 1; index >= 1; index -= 1) {
    await fs.rename(rotatedLogPath(logPath, index), rotatedLogPath(logPath, index + 1)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
  await fs.rename(logPath, rotatedLogPath(logPath, 1));
  return true;
}

/** conmon's control FIFO opened for writing, or undefined when no conmon listens (its container stopped). */
export async function openConmonControl(ctlFifo: string): Promise<fs.FileHandle | undefined> {
  try {
    // Non-blocking: a FIFO without a reader fails with ENXIO instead of hanging.
    return await fs.open(ctlFifo, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

export interface RotatedContainer {
  containerId: string;
  logPath: string;
  /** conmon's control FIFO. */
  ctlFifo: string;
}

export interface LogRotatorOptions {
  maxBytes: number;
  maxFiles: number;
  /** The running containers to check. */
  containers: () => Promise<RotatedContainer[]>;
  intervalMs?: number;
  log: Logger;
}

/** Checks the running containers' logs every interval and rotates those past the limit. */
export class LogRotator {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly options: LogRotatorOptions) {
    if (options.maxBytes < 4096) throw new Error(`cannot rotate logs: the maximum log size ${options.maxBytes} is below 4096 bytes`);
    if (!Number.isInteger(options.maxFiles) || options.maxFiles < 1 || options.maxFiles > 9) throw new Error(`cannot rotate logs: the number of old log files ${options.maxFiles} is not within 1..9`);
  }

  start(): void {
    this.timer = setInterval(() => {
      this.running = this.running.then(() => this.check()).catch((error: unknown) => this.options.log.warn('log rotation failed', { error: String(error) }));
    }, this.options.intervalMs ?? LOG_ROTATION_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running;
  }

  /** One pass (exported for tests). */
  async check(): Promise<void> {
    for (const container of await this.options.containers()) {
      const size = await fs.stat(container.logPath).then((stat) => stat.size, () => 0);
      if (size <= this.options.maxBytes) continue;
      // Only a log that conmon still writes is rotated: it must be there to start the new file.
      const control = await openConmonControl(container.ctlFifo);
      if (control === undefined) continue;
      try {
        if (!(await shiftLogFiles(container.logPath, this.options.maxFiles))) continue;
        await control.write(REOPEN_LOGS_MESSAGE);
      } finally {
        await control.close();
      }
      this.options.log.info('log rotated', { containerId: container.containerId, sizeBytes: size });
    }
  }
}
