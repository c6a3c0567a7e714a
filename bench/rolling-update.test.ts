import { describe, expect, it } from 'vitest';
import { criticalPathMs } from './rolling-update.js';

describe('rolling-update bench', () => {
  it('the critical path is the sum of each wave\'s slowest task, waves in creation order', () => {
    expect(criticalPathMs([100, 300, 200, 400, 50], 2)).toBe(300 + 400 + 50);
    expect(criticalPathMs([100, 300, 200], 10)).toBe(300);
    expect(criticalPathMs([100, 300, 200], 1)).toBe(600);
  });
});
