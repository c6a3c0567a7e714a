import { describe, expect, it } from 'vitest';
import { switchedAtMs } from './bluegreen-switch.js';

describe('bluegreen-switch bench', () => {
  it('a host switched at its first new answer after the last old one', () => {
    const answers = [
      { atMs: 1, version: 'v1' },
      { atMs: 2, version: 'v2' },
      { atMs: 3, version: 'v1' },
      { atMs: 4, version: '' },
      { atMs: 5, version: 'v2' },
      { atMs: 6, version: 'v2' },
    ];
    expect(switchedAtMs(answers, 'v2')).toBe(5);
    expect(switchedAtMs(answers.slice(0, 1), 'v2')).toBeUndefined();
  });
});
