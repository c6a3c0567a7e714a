import { describe, expect, it } from 'vitest';
import { dataNameProblem, networkNameProblem, serviceNameProblem } from './object-names.js';

describe('object names', () => {
  it('object names take a stack\'s NAME_KEY form and refuse what Swarm refuses', () => {
    expect(serviceNameProblem('shop_web')).toBeUndefined();
    expect(serviceNameProblem('shop.web')).toMatch(/letters, digits, '-' or '_'/);
    expect(serviceNameProblem('web_')).toBeDefined();
    expect(serviceNameProblem('')).toBe('must not be empty');
    expect(serviceNameProblem('a'.repeat(64))).toBeDefined();
    expect(networkNameProblem('shop_default')).toBeUndefined();
    expect(networkNameProblem('shop.front')).toBeUndefined();
    expect(networkNameProblem('-front')).toBeDefined();
    expect(dataNameProblem('shop_token.v2')).toBeUndefined();
    expect(dataNameProblem('a'.repeat(65))).toBe('is longer than 64 characters');
    expect(dataNameProblem('bad/name')).toMatch(/must start with a letter or digit/);
  });
});
