/**
 * The runtime's logger seam. The agent passes its own structured logger; the default writes JSON
 * lines to stderr: warnings always, info only with SKIFF_TRACE containing `runtime`.
 */
import { isoTime } from '../../common/log.js';

export interface RuntimeLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export function defaultRuntimeLogger(component = 'runtime'): RuntimeLogger {
  const traced = (process.env['SKIFF_TRACE'] ?? '').split(',').map((part) => part.trim()).includes('runtime');
  const write = (level: string, message: string, fields?: Record<string, unknown>): void => {
    process.stderr.write(`${JSON.stringify({ time: isoTime(Date.now()), level, component, message, ...fields })}\n`);
  };
  return {
    info: (message, fields) => {
      if (traced) write('info', message, fields);
    },
    warn: (message, fields) => write('warn', message, fields),
  };
}

/** Runs tasks for one key one at a time (stop and remove of one container never interleave). */
export class KeyedSerializer {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(task);
    this.tails.set(key, next);
    void next.catch(() => undefined).then(() => {
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
    return next;
  }
}
