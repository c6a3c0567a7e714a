import { describe, expect, it } from 'vitest';
import type { SecretSpec } from '../../proto/skiff/v1/specs.js';
import { ApiError } from './errors.js';
import { type DataKind, MAX_CONFIG_BYTES, MAX_SECRET_BYTES, validateDataSpec } from './validate-secret.js';

const spec = (overrides: Partial<SecretSpec> = {}): SecretSpec => ({ name: 'db-password', labels: {}, data: new Uint8Array([1]), ...overrides });

function refusal(kind: DataKind, value: SecretSpec | undefined): string {
  try {
    validateDataSpec(kind, value);
  } catch (error) {
    if (error instanceof ApiError) return `${error.code}: ${error.message}`;
    throw error;
  }
  return 'accepted';
}

describe('validate secret and config specs', () => {
  it('data specs accept Docker names, labels and data up to the limit', () => {
    for (const name of ['a', 'A.b_c-1', 'x'.repeat(64)]) expect(refusal('secret', spec({ name }))).toBe('accepted');
    expect(refusal('secret', spec({ labels: { env: 'prod' }, data: new Uint8Array(MAX_SECRET_BYTES) }))).toBe('accepted');
    expect(refusal('config', spec({ data: new Uint8Array(MAX_CONFIG_BYTES) }))).toBe('accepted');
  });

  it('data specs refuse data over the limit, naming the field and the limit', () => {
    expect(refusal('secret', spec({ data: new Uint8Array(MAX_SECRET_BYTES + 1) }))).toBe(
      'invalid_argument: cannot create secret "db-password": data is 512001 bytes, more than the secret size limit of 500 KiB (512000 bytes)',
    );
    expect(refusal('config', spec({ data: new Uint8Array(MAX_CONFIG_BYTES + 1) }))).toBe(
      'invalid_argument: cannot create config "db-password": data is 1024001 bytes, more than the config size limit of 1000 KiB (1024000 bytes)',
    );
    expect(refusal('secret', spec({ data: new Uint8Array(0) }))).toBe('invalid_argument: cannot create secret "db-password": data must not be empty');
  });

  const badNames: Array<[string, string]> = [
    ['', 'must not be empty'],
    ['x'.repeat(65), 'is longer than 64 characters'],
    ['-db', "must start with a letter or digit and contain only letters, digits, '_', '.' and '-'"],
    ['db/password', 'must start with a letter or digit'],
    ['db password', 'must start with a letter or digit'],
  ];
  it.each(badNames)('data specs refuse the name %j', (name, message) => {
    expect(refusal('secret', spec({ name }))).toContain(`invalid_argument: cannot create secret: name "${name}" ${message}`);
  });

  it('data specs refuse a missing spec and bad labels', () => {
    expect(refusal('config', undefined)).toBe('invalid_argument: cannot create config: spec is missing');
    expect(refusal('secret', spec({ labels: { '': 'x' } }))).toContain('a label key must not be empty');
    expect(refusal('secret', spec({ labels: { k: 'v'.repeat(4097) } }))).toContain('the value of label "k" is longer than 4096 characters');
    expect(refusal('secret', spec({ labels: Object.fromEntries(Array.from({ length: 257 }, (_, index) => [`k${index}`, ''])) }))).toContain('257 labels, more than 256');
  });
});
