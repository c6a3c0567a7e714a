/**
 * Notices new files in conmon's exit directory: fs.watch for promptness, plus a bounded poll
 * because inotify can miss events (overflow, a directory recreated under us).
 */
import { watch, type FSWatcher } from 'node:fs';

/** Upper bound on how late an exit is noticed when fs.watch misses it. */
export const EXIT_POLL_INTERVAL_MS = 500;

export class ExitDirWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dir: string,
    private readonly onChange: () => void,
  ) {}

  start(): void {
    if (this.timer !== undefined) return;
    try {
      this.watcher = watch(this.dir, { persistent: false }, () => this.onChange());
      this.watcher.on('error', () => this.stopWatching()); // the poll keeps working
    } catch {
      this.watcher = undefined;
    }
    this.timer = setInterval(() => this.onChange(), EXIT_POLL_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopWatching();
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}
