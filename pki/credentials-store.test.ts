import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate } from './certificate-authority.js';
import { CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE, readCredentials, writeCredentials, type NodeCredentials } from './credentials-store.js';

let dir: string;
let creds: NodeCredentials;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skiff-pki-'));
  const ca = await createCertificateAuthority();
  creds = { caCertPem: ca.certPem, ...(await issueCertificate(ca, { commonName: 'node1', role: 'worker' })) };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('credentials store', () => {
  it('writeCredentials then readCredentials round-trips, key mode 0600, no temporary files left', async () => {
    const target = join(dir, 'certs');
    await writeCredentials(target, creds);
    expect(await readCredentials(target)).toEqual(creds);
    expect((await stat(join(target, NODE_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect((await readdir(target)).sort()).toEqual([CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE].sort());
  });

  it('writeCredentials replaces existing credentials', async () => {
    await writeCredentials(dir, creds);
    const ca = await createCertificateAuthority();
    const next = { caCertPem: ca.certPem, ...(await issueCertificate(ca, { commonName: 'node2', role: 'manager' })) };
    await writeCredentials(dir, next);
    expect(await readCredentials(dir)).toEqual(next);
  });

  it('readCredentials names the missing file', async () => {
    await writeCredentials(dir, creds);
    await rm(join(dir, NODE_CERT_FILE));
    await expect(readCredentials(dir)).rejects.toMatchObject({ code: 'credentials_missing', message: expect.stringContaining(NODE_CERT_FILE) });
  });

  it('readCredentials names a corrupt file', async () => {
    await writeCredentials(dir, creds);
    await writeFile(join(dir, CA_CERT_FILE), 'garbage');
    await expect(readCredentials(dir)).rejects.toMatchObject({ code: 'credentials_corrupt', message: expect.stringContaining(CA_CERT_FILE) });
  });

  it('readCredentials refuses a key that does not match the certificate', async () => {
    const ca = await createCertificateAuthority();
    const other = await issueCertificate(ca, { commonName: 'node1', role: 'worker' });
    await writeCredentials(dir, { ...creds, keyPem: other.keyPem });
    await expect(readCredentials(dir)).rejects.toThrow(new RegExp(`${NODE_KEY_FILE} does not match`));
  });

  it('readCredentials refuses a certificate from another CA', async () => {
    const ca = await createCertificateAuthority();
    await writeCredentials(dir, { ...creds, caCertPem: ca.certPem });
    await expect(readCredentials(dir)).rejects.toThrow(new RegExp(`${NODE_CERT_FILE} is not signed`));
  });
});
