/**
 * Time and timers as an input, so code that waits (health probes) can be driven step by step in
 * tests (testing/manual-timers.ts) and by the real clock in the agent.
 */

/** An opaque handle from Timers.setTimeout. */
export type TimerHandle = { readonly timer: unknown };

export interface Timers {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `callback` once after `delayMs`, unless cleared first. */
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  /** Cancels a timer; a no-op for one that already fired or was cleared. */
  clearTimeout(handle: TimerHandle): void;
}

/** The process's clock and timers. */
export const systemTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (callback, delayMs) => ({ timer: setTimeout(callback, delayMs) }),
  clearTimeout: (handle) => clearTimeout(handle.timer as NodeJS.Timeout),
};
