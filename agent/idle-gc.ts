/**
 * One full garbage collection once the agent has been quiet for a while after a burst of task
 * changes. Starting many containers grows V8's heap by a few MiB of garbage that its own memory
 * reducer may leave in place for a long time on a node that keeps sending heartbeats; a worker's
 * resident memory is a goal of issue 7 (docs/benchmarks.md, agent-memory). Only when the process
 * was started with --expose-gc (bin/skiffd does so for workers); otherwise nothing happens.
 */
export const IDLE_GC_QUIET_MS = 5_000;

export interface IdleCollector {
  /** Something happened: the collection waits for another quiet period. */
  poke(): void;
  stop(): void;
}

export function idleCollector(collect: (() => void) | undefined = exposedGc(), quietMs = IDLE_GC_QUIET_MS): IdleCollector {
  let timer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  return {
    poke() {
      if (collect === undefined) return;
      stop();
      timer = setTimeout(() => {
        timer = undefined;
        collect();
      }, quietMs);
      timer.unref();
    },
    stop,
  };
}

function exposedGc(): (() => void) | undefined {
  const gc: unknown = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? () => void (gc as () => unknown)() : undefined;
}
