import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificateForKey, publicKeyOfCertificateRequest } from './certificate-authority.js';
import { issueNodeCredentials } from './ca-store.js';
import { NODE_CERT_FILE } from './credentials-store.js';
import { LiveCredentials } from './live-credentials.js';
import { CertificateRenewer, renewalDelayMs } from './renewal.js';

describe('certificate renewal', () => {
  it('is due between 50% and 80% of the validity', () => {
    expect(renewalDelayMs(0, 1000, 0, 0)).toBe(500);
    expect(renewalDelayMs(0, 1000, 0, 1)).toBe(800);
    expect(renewalDelayMs(0, 1000, 600, 0)).toBe(0);
    expect(renewalDelayMs(1000, 2000, 1200, 0.5)).toBe(450);
  });

  it('renews with a fresh key, writes it to disk and updates the live credentials', async () => {
    const ca = await createCertificateAuthority();
    const dir = await mkdtemp(join(tmpdir(), 'skiff-renew-'));
    try {
      const initial = await issueNodeCredentials(ca, { nodeId: 'node1', role: 'worker' });
      const live = new LiveCredentials(initial);
      const seen: string[] = [];
      live.onChange((creds) => seen.push(creds.certPem));
      const renewer = new CertificateRenewer({
        credentials: live,
        dir,
        renew: async (csr) => ({ certPem: await issueCertificateForKey(ca, { commonName: 'node1', role: 'manager', lifetimeMs: 60_000 }, await publicKeyOfCertificateRequest(csr)), caCertPem: ca.certPem }),
        onRenewed: (from, to) => seen.push(`${from}->${to}`),
        log: { info: () => undefined, warn: () => undefined },
      });
      await renewer.renewNow();
      renewer.stop();
      expect(live.keyPem).not.toBe(initial.keyPem);
      expect(new X509Certificate(live.certPem).checkPrivateKey((await import('node:crypto')).createPrivateKey(live.keyPem))).toBe(true);
      expect(await readFile(join(dir, NODE_CERT_FILE), 'utf8')).toBe(live.certPem);
      expect(seen).toEqual([live.certPem, 'worker->manager']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps the old credentials when the manager refuses', async () => {
    const ca = await createCertificateAuthority();
    const dir = await mkdtemp(join(tmpdir(), 'skiff-renew-'));
    try {
      const initial = await issueNodeCredentials(ca, { nodeId: 'node1', role: 'worker' });
      const live = new LiveCredentials(initial);
      const renewer = new CertificateRenewer({ credentials: live, dir, renew: () => Promise.reject(new Error('denied')), log: { info: () => undefined, warn: () => undefined } });
      await expect(renewer.renewNow()).rejects.toThrow('denied');
      renewer.stop();
      expect(live.certPem).toBe(initial.certPem);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
