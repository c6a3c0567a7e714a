/**
 * The one loop shape every controller shares: commits mark keys dirty; work runs once per
 * batch of commits (coalesced to the next macrotask); the writes of one run go out as one
 * transaction carrying the versions they read; a conflict re-marks the keys and retries.
 */
import type { Logger } from '../../common/log.js';
import { StoreError } from '../store/errors.js';
import type { Store, StoreReader, WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';

/** Delay before retrying a run whose transaction conflicted or failed. */
export const CONTROLLER_RETRY_DELAY_MS = 100;
/** Upper bound on one timer, so a far-away wake cannot overflow setTimeout. */
const MAX_WAKE_DELAY_MS = 60_000;

export interface Controller {
  readonly name: string;
  /** Keys a commit makes dirty. Must not read the store beyond the commit itself. */
  dirtyKeys(commit: StoreCommit): Iterable<string>;
  /** Every key, reconciled once at start (a new leader trusts nothing it did not read). */
  allKeys(reader: StoreReader): Iterable<string>;
  /**
   * The keys to run again when a wake time from reconcile comes (default: allKeys). For a
   * controller whose allKeys also rebuilds state kept between runs, which a timer need not redo.
   */
  wakeKeys?(reader: StoreReader): Iterable<string>;
  /**
   * Adds the writes for `keys` to `transaction`. Returns when to run again for time-based work.
   * A run that stops at the write budget may add the keys it wrote everything for to `finished`:
   * only the others run again (without it, every finished key was walked again on every run of a
   * burst, quadratic in the keys).
   */
  reconcile(keys: ReadonlySet<string>, transaction: WriteTransaction, reader: StoreReader, nowMs: number, finished: Set<string>): number | undefined;
  /**
   * True if reconcile adds every key it is done with to `finished` on every run, not only at the
   * write budget: every other key then runs again at once (for work bounded by something other
   * than writes, like the scheduler's tasks considered per run).
   */
  readonly reportsFinished?: boolean;
}

/**
 * Writes one run puts in one transaction, at most (under the store's MAX_TRANSACTION_ACTIONS).
 * Controllers stop adding writes at the budget (see remainingBudget); a run that reached it runs
 * again at once, in the next transaction, with the same keys. Large on purpose: a burst of
 * services goes out in few entries, and each node hears of several of its new tasks in one
 * Assignments message instead of one message per service (bench:placement: 1,000 per run took
 * 100,000 messages for 100 x 1,000 replicas; 5,000 took 21,000, and half the CPU). A run whose
 * transaction is too large for one Raft entry halves its budget and tries again.
 */
export const CONTROLLER_BATCH_ACTIONS = 5000;

/** The budget of a transaction a runner is building, when smaller than CONTROLLER_BATCH_ACTIONS. */
const budgets = new WeakMap<WriteTransaction, number>();

/** How many more writes `transaction` takes in this run. */
export function remainingBudget(transaction: WriteTransaction): number {
  return Math.max(0, (budgets.get(transaction) ?? CONTROLLER_BATCH_ACTIONS) - transaction.actions.length);
}

export class ControllerRunner {
  private dirty = new Set<string>();
  private scheduled = false;
  private running = false;
  private stopped = true;
  private unsubscribe: (() => void) | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAtMs: number | undefined;
  /** This runner's write budget: halved after a transaction too large for one entry, regrown after each success. */
  private budget = CONTROLLER_BATCH_ACTIONS;

  constructor(
    private readonly controller: Controller,
    private readonly store: Store,
    private readonly clock: () => number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    for (const key of this.controller.allKeys(this.store.reader)) this.dirty.add(key);
    this.unsubscribe = this.store.subscribe((commit) => {
      for (const key of this.controller.dirtyKeys(commit)) this.dirty.add(key);
      this.schedule(0);
    });
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wakeAtMs = undefined;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (delayMs === 0) {
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.run();
      });
      return;
    }
    this.wakeAt(this.clock() + delayMs);
  }

  private wakeAt(atMs: number): void {
    if (this.wakeAtMs !== undefined && this.wakeAtMs <= atMs) return;
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer);
    this.wakeAtMs = atMs;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAtMs = undefined;
      const keys = this.controller.wakeKeys?.(this.store.reader) ?? this.controller.allKeys(this.store.reader);
      for (const key of keys) this.dirty.add(key);
      this.schedule(0);
    }, Math.min(MAX_WAKE_DELAY_MS, Math.max(0, atMs - this.clock())));
  }

  private async run(): Promise<void> {
    if (this.stopped || this.dirty.size === 0) return;
    if (this.running) {
      // The in-flight run reschedules when it ends.
      return;
    }
    this.running = true;
    const keys = this.dirty;
    this.dirty = new Set();
    let wake: number | undefined;
    let full = false;
    let finished = new Set<string>();
    let written = 0;
    try {
      await this.store.update((transaction, reader) => {
        finished = new Set(); // a retried build starts over
        budgets.set(transaction, this.budget);
        wake = this.controller.reconcile(keys, transaction, reader, this.clock(), finished);
        full = remainingBudget(transaction) === 0;
        written = transaction.actions.length;
      });
      this.budget = Math.min(CONTROLLER_BATCH_ACTIONS, this.budget * 2);
      // Stopped at the budget (or early, for a controller that says so): run the keys again that
      // the controller did not say it finished.
      if (full || this.controller.reportsFinished === true) for (const key of keys) if (!finished.has(key)) this.dirty.add(key);
      if (wake !== undefined) this.wakeAt(wake);
    } catch (error) {
      for (const key of keys) this.dirty.add(key);
      if (error instanceof StoreError && error.code === 'too_large' && written > 1) {
        // Large objects: the same keys again at once, in transactions of half as many writes.
        this.budget = Math.max(1, Math.floor(written / 2));
        this.log.info('reconcile transaction too large; retrying with fewer writes', { controller: this.controller.name, writes: written, budget: this.budget });
        this.running = false;
        this.schedule(0);
        return;
      }
      const level = error instanceof StoreError && error.code === 'version_conflict' ? 'debug' : 'warn';
      this.log[level]('reconcile failed; retrying', { controller: this.controller.name, error: String(error) });
      this.running = false;
      this.schedule(CONTROLLER_RETRY_DELAY_MS);
      return;
    }
    this.running = false;
    if (this.dirty.size > 0) this.schedule(0);
  }
}
