import { describe, expect, it } from 'vitest';
import { kibToMib, procKib, processMemory } from './proc-memory.js';

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
});
