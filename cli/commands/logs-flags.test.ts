import { describe, expect, it } from 'vitest';
import { execRequest, logPrefix, logsOptions, parseSince, parseTail } from './logs-flags.js';

describe('logs flags', () => {
  it('--tail takes a count or all', () => {
    expect(parseTail('all')).toBe(-1);
    expect(parseTail('5')).toBe(5);
    expect(parseTail('0')).toBe(0);
    expect(() => parseTail('-3')).toThrow('--tail');
    expect(() => parseTail('many')).toThrow('--tail');
  });

  it('--since takes a duration before now or an RFC 3339 time', () => {
    const now = Date.parse('2026-11-23T12:00:00Z');
    expect(parseSince('10m', now)).toBe(now - 600_000);
    expect(parseSince('1h30m', now)).toBe(now - 5_400_000);
    expect(parseSince('2026-11-23T11:00:00Z', now)).toBe(Date.parse('2026-11-23T11:00:00Z'));
    expect(parseSince('2026-11-23T11:00:00.123456789+01:00', now)).toBe(Date.parse('2026-11-23T10:00:00.123Z'));
    expect(() => parseSince('yesterday', now)).toThrow('--since');
    expect(() => parseSince('2026-13-45T99:00:00Z', now)).toThrow('--since');
  });

  it('builds the request options (all lines by default)', () => {
    expect(logsOptions({ follow: true, tail: 'all', timestamps: false }, 0)).toEqual({ follow: true, tail: -1, sinceMs: 0 });
    expect(logsOptions({ follow: false, tail: '1', since: '1s', timestamps: true }, 5_000)).toEqual({ follow: false, tail: 1, sinceMs: 4_000 });
  });

  it('prefixes lines like docker service logs', () => {
    expect(logPrefix('web.2', 'abcdefghijklmnopqrstuvwxy', 'h2')).toBe('web.2.abcdefghijkl@h2');
  });
});

describe('exec flags', () => {
  it('builds the exec request', () => {
    expect(execRequest('web.1', ['sh', '-c', 'exit 7'], { interactive: true, env: ['A=1'], user: 'nobody', workdir: '/tmp' })).toEqual({
      task: 'web.1',
      argv: ['sh', '-c', 'exit 7'],
      env: ['A=1'],
      user: 'nobody',
      workdir: '/tmp',
      attachStdin: true,
    });
  });

  it('names the flag that is wrong', () => {
    expect(() => execRequest('web.1', [], { interactive: false, env: [] })).toThrow('give the command');
    expect(() => execRequest('web.1', ['true'], { interactive: false, env: ['NOEQUALS'] })).toThrow('--env');
    expect(() => execRequest('web.1', ['true'], { interactive: false, env: [], workdir: 'relative' })).toThrow('--workdir');
  });
});
