import { describe, expect, it } from 'vitest';
import { parseIntegerFlags } from './args.js';

const spec = { runs: { default: 3, min: 1, max: 100 }, replicas: { default: 50, min: 1, max: 500 } };

describe('parseIntegerFlags', () => {
  it('returns the defaults when no flag is given', () => {
    expect(parseIntegerFlags([], spec, 'x')).toEqual({ runs: 3, replicas: 50 });
  });

  it('reads --name N and --name=N', () => {
    expect(parseIntegerFlags(['--runs', '5', '--replicas=20'], spec, 'x')).toEqual({ runs: 5, replicas: 20 });
  });

  it('refuses unknown arguments, naming them and the usage', () => {
    expect(() => parseIntegerFlags(['--run', '5'], spec, 'bench [--runs N]')).toThrow('cannot parse arguments: unknown argument "--run" (usage: bench [--runs N])');
    expect(() => parseIntegerFlags(['5'], spec, 'u')).toThrow('unknown argument "5"');
  });

  it('refuses missing, non-integer and out-of-range values, naming the flag and the range', () => {
    expect(() => parseIntegerFlags(['--runs'], spec, 'u')).toThrow('cannot parse --runs: expected an integer in 1..100, got ""');
    expect(() => parseIntegerFlags(['--runs', '2.5'], spec, 'u')).toThrow('cannot parse --runs: expected an integer in 1..100, got "2.5"');
    expect(() => parseIntegerFlags(['--runs=0'], spec, 'u')).toThrow('got "0"');
    expect(() => parseIntegerFlags(['--replicas', '501'], spec, 'u')).toThrow('cannot parse --replicas: expected an integer in 1..500, got "501"');
    expect(() => parseIntegerFlags(['--runs='], spec, 'u')).toThrow('got ""');
  });
});
