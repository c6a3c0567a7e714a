import { describe, expect, it } from 'vitest';
import { MAX_UNIX_SOCKET_PATH_BYTES, checkUnixSocketPath, underlayIp } from './address.js';

describe('underlayIp', () => {
  it('drops the port of IP:PORT and leaves anything else alone', () => {
    expect(underlayIp('198.18.0.2:4243')).toBe('198.18.0.2');
    expect(underlayIp('198.18.0.2')).toBe('198.18.0.2');
    expect(underlayIp('manager.example:4243')).toBe('manager.example:4243');
    expect(underlayIp('')).toBe('');
  });
});

describe('checkUnixSocketPath', () => {
  it('takes a path up to 107 bytes and refuses a longer one, naming what it was for', () => {
    const longest = `/${'a'.repeat(MAX_UNIX_SOCKET_PATH_BYTES - 1)}`;
    expect(() => checkUnixSocketPath(longest, 'the control API')).not.toThrow();
    expect(() => checkUnixSocketPath(`${longest}b`, 'the control API')).toThrow(`cannot serve the control API on ${longest}b: a unix socket path is at most 107 bytes, this one has 108`);
    // Bytes, not characters.
    expect(() => checkUnixSocketPath(`/${'é'.repeat(54)}`, 'x')).toThrow(/this one has 109/);
  });
});
