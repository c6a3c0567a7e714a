import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate } from './certificate-authority.js';
import { CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE, isKeyEncrypted, readCredentials, rewrapNodeKey, writeCredentials, type NodeCredentials } from './credentials-store.js';

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

describe('credentials store with an encrypted key', () => {
  const passphrase = 'SKFKEY-1-c2tpZmYtdGVzdC1wYXNzcGhyYXNlLW5vdC1hLXJlYWwta2V5';
  const keyBody = (pem: string): string => pem.split('\n').filter((line) => line !== '' && !line.startsWith('-----')).join('');

  it('credentials store with a passphrase writes an encrypted PKCS#8 key and reads back the plaintext PEM', async () => {
    await writeCredentials(dir, creds, { keyPassphrase: passphrase });
    const file = await readFile(join(dir, NODE_KEY_FILE), 'utf8');
    expect(file).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    expect(file).not.toContain(keyBody(creds.keyPem).slice(0, 40));
    expect(file).not.toContain(passphrase);
    expect((await stat(join(dir, NODE_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect(await isKeyEncrypted(dir)).toBe(true);
    const read = await readCredentials(dir, { keyPassphrase: passphrase });
    expect(read).toEqual({ ...creds, keyPem: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----\n/) });
    expect(keyBody(read.keyPem)).toBe(keyBody(creds.keyPem));
  });

  it('credentials store refuses an encrypted key without a passphrase, or with the wrong one, as credentials_locked', async () => {
    await writeCredentials(dir, creds, { keyPassphrase: passphrase });
    await expect(readCredentials(dir)).rejects.toMatchObject({
      code: 'credentials_locked',
      message: `cannot read credentials: ${join(dir, NODE_KEY_FILE)} is an encrypted private key and no passphrase was given (the manager is autolocked: run \`skiff unlock\`)`,
    });
    await expect(readCredentials(dir, { keyPassphrase: `${passphrase}x` })).rejects.toMatchObject({ code: 'credentials_locked', message: expect.stringContaining('wrong unlock key') });
  });

  it('credentials store reports every wrong passphrase as locked, also when the cipher padding happens to pass', async () => {
    await writeCredentials(dir, creds, { keyPassphrase: passphrase });
    // About one wrong key in 256 passes the padding check and fails later, in the key's decoding.
    for (let attempt = 0; attempt < 1500; attempt += 1) {
      const outcome = await readCredentials(dir, { keyPassphrase: `wrong-${attempt}` }).then(() => 'opened', (error: { code?: string }) => error.code);
      expect(outcome, `passphrase wrong-${attempt}`).toBe('credentials_locked');
    }
  });

  it('credentials store rewraps node.key in place: encrypt, change passphrase, decrypt', async () => {
    await writeCredentials(dir, creds);
    expect(await isKeyEncrypted(dir)).toBe(false);
    await rewrapNodeKey(dir, passphrase);
    expect(await isKeyEncrypted(dir)).toBe(true);
    await rewrapNodeKey(dir, passphrase); // repeated after a crash: harmless
    const next = `${passphrase}-next`;
    await expect(rewrapNodeKey(dir, next)).rejects.toMatchObject({ code: 'credentials_locked' });
    await rewrapNodeKey(dir, next, passphrase);
    await expect(readCredentials(dir, { keyPassphrase: passphrase })).rejects.toMatchObject({ code: 'credentials_locked' });
    expect(keyBody((await readCredentials(dir, { keyPassphrase: next })).keyPem)).toBe(keyBody(creds.keyPem));
    await rewrapNodeKey(dir, undefined, next);
    expect(await isKeyEncrypted(dir)).toBe(false);
    expect(keyBody((await readCredentials(dir)).keyPem)).toBe(keyBody(creds.keyPem));
    expect((await stat(join(dir, NODE_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual([CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE].sort());
  });

  it('credentials store refuses an empty passphrase', async () => {
    await expect(writeCredentials(dir, creds, { keyPassphrase: '' })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});
