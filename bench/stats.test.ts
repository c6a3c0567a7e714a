import { describe, expect, it } from 'vitest';
import { percentile, ratio, roundMs, summarize, throughputMBps } from './stats.js';

describe('bench stats', () => {
  it('percentile picks the nearest-rank sample, whatever the input order', () => {
    const samples = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5];
    expect(percentile(samples, 50)).toBe(5);
    expect(percentile(samples, 90)).toBe(9);
    expect(percentile(samples, 100)).toBe(10);
    expect(percentile(samples, 1)).toBe(1);
  });

  it('percentile of a single sample is that sample', () => {
    expect(percentile([42], 50)).toBe(42);
    expect(percentile([42], 90)).toBe(42);
  });

  it('percentile of an odd count takes the middle sample for p50', () => {
    expect(percentile([3, 1, 2], 50)).toBe(2);
  });

  it('percentile rejects no samples and out-of-range percents', () => {
    expect(() => percentile([], 50)).toThrow(/no samples/);
    expect(() => percentile([1], 0)).toThrow(/must be in/);
    expect(() => percentile([1], 101)).toThrow(/must be in/);
  });

  it('summarize reports p50, p90, min and max rounded to 0.1 ms', () => {
    expect(summarize([12.34, 10.01, 50.55, 11.11])).toEqual({ p50_ms: 11.1, p90_ms: 50.6, min_ms: 10, max_ms: 50.6 });
  });

  it('summarize does not reorder its input', () => {
    const samples = [3, 1, 2];
    summarize(samples);
    expect(samples).toEqual([3, 1, 2]);
  });

  it('summarize rejects non-finite samples', () => {
    expect(() => summarize([1, Number.NaN])).toThrow(/finite/);
  });

  it('roundMs and ratio round for the report; ratio is undefined for a zero denominator', () => {
    expect(roundMs(1.26)).toBe(1.3);
    expect(ratio(300, 40)).toBe(7.5);
    expect(ratio(1, 3)).toBe(0.33);
    expect(ratio(1, 0)).toBeUndefined();
  });

  it('throughputMBps is decimal megabytes per second, refusing a non-positive time', () => {
    expect(throughputMBps(125_000_000, 1000)).toBe(125);
    expect(throughputMBps(100_000_000, 750)).toBe(133.3);
    expect(() => throughputMBps(1, 0)).toThrow('cannot compute a throughput: the time 0 ms is not positive');
  });
});
