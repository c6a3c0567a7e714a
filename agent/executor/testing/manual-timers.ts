/**
 * Timers for tests: time stands still until the test advances it; due callbacks then fire in
 * time order, and the promises they start get to run between one callback and the next.
 */
import type { TimerHandle, Timers } from '../timers.js';

interface Pending {
  handle: TimerHandle;
  atMs: number;
  sequence: number;
  callback: () => void;
}

/** How many event-loop turns run after each fired callback (enough for fake I/O chains). */
const TURNS_AFTER_CALLBACK = 10;

export class ManualTimers implements Timers {
  private nowMs: number;
  private pending: Pending[] = [];
  private sequence = 0;

  constructor(startMs = 1_700_000_000_000) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const handle: TimerHandle = { timer: this.sequence };
    this.sequence += 1;
    this.pending.push({ handle, atMs: this.nowMs + Math.max(0, delayMs), sequence: this.sequence, callback });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.pending = this.pending.filter((entry) => entry.handle !== handle);
  }

  /** Timers not yet fired, with their due times (for assertions). */
  get dueTimesMs(): number[] {
    return this.pending.map((entry) => entry.atMs).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing every timer due by then in order. */
  async advance(ms: number): Promise<void> {
    const targetMs = this.nowMs + ms;
    await settle();
    for (;;) {
      const next = [...this.pending].sort((a, b) => a.atMs - b.atMs || a.sequence - b.sequence)[0];
      if (next === undefined || next.atMs > targetMs) break;
      this.pending = this.pending.filter((entry) => entry !== next);
      this.nowMs = next.atMs;
      next.callback();
      await settle();
    }
    this.nowMs = targetMs;
  }
}

async function settle(): Promise<void> {
  for (let turn = 0; turn < TURNS_AFTER_CALLBACK; turn += 1) await new Promise((resolve) => setImmediate(resolve));
}
