import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CA_KEY_FILE, issueNodeCredentials, readCertificateAuthority, writeCertificateAuthority } from './ca-store.js';
import { certificateIdentity, createCertificateAuthority } from './certificate-authority.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skiff-ca-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CA store', () => {
  it('writeCertificateAuthority then readCertificateAuthority round-trips with the key 0600', async () => {
    const ca = await createCertificateAuthority();
    await writeCertificateAuthority(join(dir, 'ca'), ca);
    expect(await readCertificateAuthority(join(dir, 'ca'))).toEqual(ca);
    expect((await stat(join(dir, 'ca', CA_KEY_FILE))).mode & 0o777).toBe(0o600);
  });

  it('writeCertificateAuthority refuses to overwrite an existing CA and names the file', async () => {
    await writeCertificateAuthority(dir, await createCertificateAuthority());
    await expect(writeCertificateAuthority(dir, await createCertificateAuthority())).rejects.toThrow(`${join(dir, 'ca.crt')} already exists`);
  });

  it('readCertificateAuthority names a missing file', async () => {
    await expect(readCertificateAuthority(dir)).rejects.toThrow(join(dir, 'ca.crt'));
  });

  it('issueNodeCredentials returns certificate, key and the CA to trust', async () => {
    const ca = await createCertificateAuthority();
    const creds = await issueNodeCredentials(ca, { nodeId: 'abc', role: 'manager', ipAddresses: ['198.18.0.11'] });
    expect(creds.caCertPem).toBe(ca.certPem);
    expect(certificateIdentity(creds.certPem)).toEqual({ nodeId: 'abc', role: 'manager', clusterId: ca.clusterId });
  });
});
