import { describe, expect, it } from 'vitest';
import { createCertificateAuthority } from './certificate-authority.js';
import { CA_DIGEST_LENGTH, caDigest, joinTokensEqual, newJoinToken, parseJoinToken } from './join-token.js';

describe('join tokens', () => {
  it('carry the CA digest and a fresh secret, and parse back', async () => {
    const ca = await createCertificateAuthority();
    const digest = caDigest(ca.certPem);
    expect(digest).toHaveLength(CA_DIGEST_LENGTH);
    const token = newJoinToken(digest);
    expect(token).toMatch(/^SKF-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    expect(parseJoinToken(token).caDigest).toBe(digest);
    expect(newJoinToken(digest)).not.toBe(token);
    expect(caDigest((await createCertificateAuthority()).certPem)).not.toBe(digest);
  });

  it('refuse malformed tokens with the reason', () => {
    expect(() => parseJoinToken('nonsense')).toThrow(/expected SKF-1-<CA digest>-<secret>/);
    expect(() => parseJoinToken(`SKF-2-${'a'.repeat(50)}-${'b'.repeat(25)}`)).toThrow(/version 2 is not supported/);
    expect(() => parseJoinToken(`SKF-1-${'a'.repeat(49)}-${'b'.repeat(25)}`)).toThrow(/CA digest must be 50/);
    expect(() => parseJoinToken(`SKF-1-${'a'.repeat(50)}-${'B'.repeat(25)}`)).toThrow(/secret must be 25/);
  });

  it('compare equal only when identical', () => {
    expect(joinTokensEqual('SKF-1-a-b', 'SKF-1-a-b')).toBe(true);
    expect(joinTokensEqual('SKF-1-a-b', 'SKF-1-a-c')).toBe(false);
    expect(joinTokensEqual('SKF-1-a-b', 'SKF-1-a-bb')).toBe(false);
  });
});
