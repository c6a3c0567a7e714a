import { describe, expect, it } from 'vitest';
import { isoTime } from '../../common/log.js';

describe('isoTime', () => {
  it('matches Date.prototype.toISOString over four centuries, leap days and the epoch', () => {
    const samples = [0, 1, 999, 86_399_999, 86_400_000, Date.UTC(2000, 1, 29, 23, 59, 59, 999), Date.UTC(1900, 2, 1), Date.UTC(2100, 1, 28, 12), Date.UTC(2026, 11, 4, 14, 40, 1, 7), Date.UTC(9999, 11, 31, 23, 59, 59, 999)];
    for (let ms = Date.UTC(1970, 0, 1); ms < Date.UTC(2370, 0, 1); ms += 86_400_000 * 7 + 3_723_456) samples.push(ms);
    for (const ms of samples) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });
});
