import { describe, expect, it } from 'vitest';
import { underlayIp } from './address.js';

describe('underlayIp', () => {
  it('drops the port of IP:PORT and leaves anything else alone', () => {
    expect(underlayIp('198.18.0.2:4243')).toBe('198.18.0.2');
    expect(underlayIp('198.18.0.2')).toBe('198.18.0.2');
    expect(underlayIp('manager.example:4243')).toBe('manager.example:4243');
    expect(underlayIp('')).toBe('');
  });
});
