import { describe, expect, it } from 'vitest';
import { cpuMicrosPerOperation, cpuSeconds, cpuUsedSince, kibToMib, procKib, processMemory, statCpuSeconds } from './proc-memory.js';

const status = ['Name:\tnode', 'VmPeak:\t 1100000 kB', 'VmRSS:\t   89300 kB', 'RssAnon:\t   42500 kB', 'RssFile:\t   46700 kB', 'Threads:\t11'].join('\n');

describe('proc memory parsing', () => {
  it('reads a kB field by exact name', () => {
    expect(procKib(status, 'VmRSS')).toBe(89_300);
    expect(procKib(status, 'RssAnon')).toBe(42_500);
    expect(procKib(status, 'Rss')).toBeUndefined();
    expect(procKib(status, 'Threads')).toBeUndefined();
    expect(procKib('Rss:   1000 kB\nPss:    600 kB\nPss_Anon:  500 kB\n', 'Pss')).toBe(600);
  });

  it('converts KiB to MiB with one decimal', () => {
    expect(kibToMib(89_300)).toBe(87.2);
    expect(kibToMib(1024)).toBe(1);
  });

  it('reads this process, and nothing for a pid that does not exist', async () => {
    const own = await processMemory(process.pid);
    expect(own?.rssKib).toBeGreaterThan(0);
    expect(await processMemory(2 ** 22 + 1)).toBeUndefined();
  });

  it('reads user + system CPU seconds from a stat line, even when the command holds ") "', () => {
    const stat = '4242 (node (x) y) S 1 4242 4242 0 -1 4194304 98 0 0 0 250 75 0 0 20 0 1 0 1604797 3133440 357';
    expect(statCpuSeconds(stat)).toBe(3.25);
    expect(statCpuSeconds('4242 (node) S 1 2')).toBeUndefined();
  });

  it('reads the CPU time of this process, and nothing for a pid that does not exist', async () => {
    const started = await cpuSeconds(process.pid);
    expect(started).toBeGreaterThan(0);
    expect(await cpuSeconds(2 ** 22 + 1)).toBeUndefined();
  });

  it('subtracts two CPU readings per process, with their total', () => {
    expect(cpuUsedSince({ m1: 10, bench: 2 }, { m1: 12.54, m2: 1, bench: 2 })).toEqual({ m1: 2.5, m2: 1, bench: 0, total: 3.5 });
  });

  it('divides the CPU two readings differ by among the operations, per process and in total', () => {
    const before = { leader: 10, follower: 4, client: 1 };
    const after = { leader: 10.5, follower: 4.2, client: 1.3 };
    expect(cpuMicrosPerOperation(before, after, 1_000)).toEqual({ leader: 500, follower: 200, client: 300, total: 1_000 });
    expect(cpuMicrosPerOperation({}, { leader: 0.001 }, 3)).toEqual({ leader: 333, total: 333 });
    expect(() => cpuMicrosPerOperation(before, after, 0)).toThrow(/0 operations/);
  });
});
