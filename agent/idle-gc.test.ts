import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { idleCollector } from './idle-gc.js';

describe('idleCollector', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('collects once, a quiet period after the last poke', () => {
    const collect = vi.fn();
    const collector = idleCollector(collect, 5_000);
    collector.poke();
    vi.advanceTimersByTime(4_000);
    collector.poke();
    vi.advanceTimersByTime(4_000);
    expect(collect).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1_000);
    expect(collect).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(60_000);
    expect(collect).toHaveBeenCalledTimes(1);
  });

  it('does nothing after stop, or without a collector (no --expose-gc)', () => {
    const collect = vi.fn();
    const collector = idleCollector(collect, 5_000);
    collector.poke();
    collector.stop();
    vi.advanceTimersByTime(10_000);
    expect(collect).not.toHaveBeenCalled();
    idleCollector(undefined, 5_000).poke();
    vi.advanceTimersByTime(10_000);
  });
});
