/**
 * The load shape of the raft benchmark, the same for both systems: N closed-loop writers for a
 * fixed time, and a failover probe that retries one write in a tight loop against the survivors
 * of a kill -9. Knows nothing about Skiff or etcd: a system is a list of `WriteOnce` functions.
 */
import { performance } from 'node:perf_hooks';
import { checkNotStopping } from './bench-support.js';
import { percentile, roundMs } from './stats.js';

/** One acknowledged write; rejects on any error or when its deadline passes. */
export type WriteOnce = () => Promise<void>;

/** Size of every value written, in bytes (the 256-byte values). */
export const VALUE_BYTES = 256;
/** Latency samples kept per series before the run is refused (about 8 bytes each). */
export const MAX_SAMPLES = 5_000_000;
/** Failed writes tolerated in one series before the benchmark gives up on it. */
export const MAX_ERRORS_PER_SERIES = 100;
/** Deadline of one failover attempt: short, so a write stuck on the dead leader is retried soon. */
export const FAILOVER_ATTEMPT_DEADLINE_MS = 300;
/** After a failover attempt that failed fast (e.g. UNAVAILABLE), wait this long before the next. */
export const FAILOVER_RETRY_PAUSE_MS = 5;
/** Give up on a failover that has not produced a successful write after this long. */
export const FAILOVER_TIMEOUT_MS = 60_000;

/**
 * A 256-byte ASCII value that differs on every call for the same writer (Skiff's UpdateService
 * skips a write whose spec did not change, so the value must change).
 */
export function writeValue(writer: number, sequence: number): string {
  const head = `w${writer}-s${sequence}-`;
  return head + 'x'.repeat(VALUE_BYTES - head.length);
}

/** What the report prints for one system at one N. */
export interface SeriesReport {
  writes_per_s: number;
  p50_ms: number;
  p99_ms: number;
  writes: number;
  errors: number;
}

/**
 * Runs every writer in its own closed loop (next write as soon as the last is acknowledged)
 * until `seconds` have passed; a write still in flight then completes and counts. Throughput is
 * completed writes over the time until the last loop ended.
 */
export async function runClosedLoop(writers: readonly WriteOnce[], seconds: number): Promise<SeriesReport> {
  const latenciesMs: number[] = [];
  let errors = 0;
  let lastError = '';
  const startedAt = performance.now();
  const endAt = startedAt + seconds * 1000;
  const loop = async (write: WriteOnce): Promise<void> => {
    while (performance.now() < endAt) {
      // A signal ends the series at once, not after up to --seconds.
      checkNotStopping();
      const before = performance.now();
      try {
        await write();
        latenciesMs.push(performance.now() - before);
        if (latenciesMs.length > MAX_SAMPLES) throw new Error(`cannot keep more than ${MAX_SAMPLES} latency samples`);
      } catch (error) {
        errors += 1;
        lastError = error instanceof Error ? error.message : String(error);
        if (errors > MAX_ERRORS_PER_SERIES) throw new Error(`cannot run the load: more than ${MAX_ERRORS_PER_SERIES} failed writes (last: ${lastError})`);
      }
    }
  };
  await Promise.all(writers.map(loop));
  const elapsedMs = performance.now() - startedAt;
  if (latenciesMs.length === 0) throw new Error(`cannot summarize the load: no write succeeded (last error: ${lastError || 'none'})`);
  return {
    writes_per_s: Math.round((latenciesMs.length / elapsedMs) * 1000),
    p50_ms: roundMs(percentile(latenciesMs, 50)),
    p99_ms: roundMs(percentile(latenciesMs, 99)),
    writes: latenciesMs.length,
    errors,
  };
}

/**
 * Kills the leader and times until a write succeeds again: from just before `killLeader` to the
 * acknowledgement of the first successful attempt. Attempts go round-robin over `attempts` (one
 * per surviving member, each with its own short deadline), back to back.
 */
export async function measureFailover(killLeader: () => void, attempts: readonly WriteOnce[]): Promise<number> {
  if (attempts.length === 0) throw new Error('cannot measure failover: no surviving member to write to');
  const startedAt = performance.now();
  killLeader();
  for (let attempt = 0; ; attempt += 1) {
    checkNotStopping();
    const write = attempts[attempt % attempts.length];
    if (write === undefined) throw new Error('assertion failed: failover attempt out of range');
    const before = performance.now();
    try {
      await write();
      return roundMs(performance.now() - startedAt);
    } catch {
      if (performance.now() - startedAt > FAILOVER_TIMEOUT_MS) throw new Error(`cannot measure failover: no write succeeded within ${FAILOVER_TIMEOUT_MS} ms of the kill`);
      if (performance.now() - before < FAILOVER_RETRY_PAUSE_MS) await new Promise((resolve) => setTimeout(resolve, FAILOVER_RETRY_PAUSE_MS));
    }
  }
}
