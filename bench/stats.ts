/**
 * Summary statistics for benchmark samples. Pure: no I/O. Percentiles use the nearest-rank
 * method (the smallest sample with at least p% of the samples at or below it), so every reported
 * figure is a time that was actually measured, never an interpolation between two runs.
 */

/** Digits after the decimal point in reported milliseconds (0.1 ms is below timer noise anyway). */
export const REPORTED_DECIMALS = 1;

/** What each benchmark reports for one series of samples, in milliseconds. */
export interface LatencySummary {
  p50_ms: number;
  p90_ms: number;
  min_ms: number;
  max_ms: number;
}

/** Nearest-rank percentile `percent` (0 < percent <= 100) of non-empty `samples`. */
export function percentile(samples: readonly number[], percent: number): number {
  if (samples.length === 0) throw new Error('cannot take a percentile: no samples');
  if (!(percent > 0 && percent <= 100)) throw new Error(`cannot take percentile ${percent}: it must be in (0, 100]`);
  const sorted = [...samples].sort((left, right) => left - right);
  const rank = Math.ceil((percent / 100) * sorted.length);
  const value = sorted[rank - 1];
  if (value === undefined) throw new Error(`percentile rank ${rank} is outside 1..${sorted.length}`);
  return value;
}

/** Rounds milliseconds to REPORTED_DECIMALS. */
export function roundMs(value: number): number {
  const scale = 10 ** REPORTED_DECIMALS;
  return Math.round(value * scale) / scale;
}

/** p50, p90, min and max of non-empty `samples`, rounded for the report. */
export function summarize(samples: readonly number[]): LatencySummary {
  if (samples.some((sample) => !Number.isFinite(sample))) throw new Error('cannot summarize: a sample is not a finite number');
  return {
    p50_ms: roundMs(percentile(samples, 50)),
    p90_ms: roundMs(percentile(samples, 90)),
    min_ms: roundMs(Math.min(...samples)),
    max_ms: roundMs(Math.max(...samples)),
  };
}

/** `numerator / denominator` with two decimals; undefined when the denominator is not positive. */
export function ratio(numerator: number, denominator: number): number | undefined {
  if (!(denominator > 0)) return undefined;
  return Math.round((numerator / denominator) * 100) / 100;
}

/** MB/s (10^6 bytes per second) of `bytes` moved in `ms`, one decimal; throws on a non-positive time. */
export function throughputMBps(bytes: number, ms: number): number {
  if (!(ms > 0)) throw new Error(`cannot compute a throughput: the time ${ms} ms is not positive`);
  return Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;
}
