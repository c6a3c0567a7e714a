import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CA_CERT_FILE,
  NODE_CERT_FILE,
  NODE_KEY_FILE,
  certificateIdentity,
  createCertificateAuthority,
  issueCertificateForKey,
  issueNodeCredentials,
  newNodeId,
  publicKeyOfCertificateRequest,
  writeCredentials,
  type CertificateAuthority,
  type NodeCredentials,
  type NodeRole,
} from '../pki/index.js';
import { adminCertificateState, freshAdminCredential, renewAdminCredential, type AdminRenewalOptions } from './admin-credential.js';
import type { LoadedContext } from './context.js';

const DAY_MS = 24 * 60 * 60 * 1000;

let ca: CertificateAuthority;
let home = '';
const savedHome = process.env['SKIFF_HOME'];

beforeAll(async () => {
  ca = await createCertificateAuthority();
});

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'skiff-admin-cred-'));
  process.env['SKIFF_HOME'] = home;
});

afterEach(async () => {
  if (savedHome === undefined) delete process.env['SKIFF_HOME'];
  else process.env['SKIFF_HOME'] = savedHome;
  await rm(home, { recursive: true, force: true });
});

/** Bounds of a certificate's validity, in ms. */
function validity(certPem: string): { from: number; to: number } {
  const cert = new X509Certificate(certPem);
  return { from: Date.parse(cert.validFrom), to: Date.parse(cert.validTo) };
}

/** A context named `t` whose files hold `credentials`. */
async function contextWith(credentials: NodeCredentials): Promise<LoadedContext> {
  const dir = join(home, 'certs', 't');
  await writeCredentials(dir, credentials);
  return { name: 't', managers: ['10.0.0.1:4243'], caCertPath: join(dir, CA_CERT_FILE), certPath: join(dir, NODE_CERT_FILE), keyPath: join(dir, NODE_KEY_FILE) };
}

/** A stand-in for the managers that signs the request with the real CA, for `nodeId` in `role`. */
function signingRenewer(nodeId: string, role: NodeRole, calls: { count: number }): NonNullable<AdminRenewalOptions['renew']> {
  return async (_managers, _credentials, csrDer) => {
    calls.count += 1;
    const certPem = await issueCertificateForKey(ca, { commonName: nodeId, role, lifetimeDays: 90 }, await publicKeyOfCertificateRequest(csrDer));
    return { certPem, caCertPem: ca.certPem };
  };
}

describe('adminCertificateState', () => {
  it('is fresh before half of the validity, due from then on, expired at the end', async () => {
    const admin = await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'admin' });
    const { from, to } = validity(admin.certPem);
    const half = from + (to - from) / 2;
    expect(adminCertificateState(admin.certPem, half - 1_000)).toBe('fresh');
    expect(adminCertificateState(admin.certPem, half + 1_000)).toBe('due');
    expect(adminCertificateState(admin.certPem, to)).toBe('expired');
  });
});

describe('freshAdminCredential', () => {
  it('leaves a fresh credential alone and asks no manager', async () => {
    const admin = await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'admin' });
    const calls = { count: 0 };
    const used = await freshAdminCredential(await contextWith(admin), admin, { renew: signingRenewer('x', 'admin', calls) });
    expect(used).toBe(admin);
    expect(calls.count).toBe(0);
  });

  it('renews a due credential: same admin identity, a new key, and the files on disk replaced', async () => {
    const nodeId = newNodeId();
    const admin = await issueNodeCredentials(ca, { nodeId, role: 'admin' });
    const context = await contextWith(admin);
    const later = validity(admin.certPem).from + 60 * DAY_MS;
    const calls = { count: 0 };
    const used = await freshAdminCredential(context, admin, { now: () => later, renew: signingRenewer(nodeId, 'admin', calls) });
    expect(calls.count).toBe(1);
    expect(used.keyPem).not.toBe(admin.keyPem);
    expect(certificateIdentity(used.certPem)).toMatchObject({ nodeId, role: 'admin' });
    expect(await readFile(context.certPath, 'utf8')).toBe(used.certPem);
    expect(await readFile(context.keyPath, 'utf8')).toBe(used.keyPem);
    expect(new X509Certificate(used.certPem).checkPrivateKey((await import('node:crypto')).createPrivateKey(used.keyPem))).toBe(true);
  });

  it('takes a credential another CLI renewed meanwhile instead of renewing again', async () => {
    const nodeId = newNodeId();
    const old = await issueNodeCredentials(ca, { nodeId, role: 'admin' });
    const context = await contextWith(old);
    // Longer-lived, so still fresh when the old one is due.
    const newer = await issueNodeCredentials(ca, { nodeId, role: 'admin', lifetimeMs: 200 * DAY_MS });
    await writeCredentials(join(home, 'certs', 't'), newer);
    const { from, to } = validity(old.certPem);
    const due = from + (to - from) / 2 + 1;
    expect(adminCertificateState(newer.certPem, due)).toBe('fresh');
    const calls = { count: 0 };
    const used = await freshAdminCredential(context, old, { now: () => due, renew: signingRenewer(nodeId, 'admin', calls) });
    expect(calls.count).toBe(0);
    expect(used.certPem).toBe(newer.certPem);
    expect(used.keyPem).toBe(newer.keyPem);
  });

  it('renewAdminCredential with force renews even a fresh credential another CLI just wrote (as after ca rotate)', async () => {
    const nodeId = newNodeId();
    const admin = await issueNodeCredentials(ca, { nodeId, role: 'admin' });
    const context = await contextWith(admin);
    const calls = { count: 0 };
    const used = await renewAdminCredential(context, admin, { force: true, renew: signingRenewer(nodeId, 'admin', calls) });
    expect(calls.count).toBe(1);
    expect(used.certPem).not.toBe(admin.certPem);
    expect(await readFile(context.certPath, 'utf8')).toBe(used.certPem);
  });

  it('keeps the credential and warns when a manager hands back anything but this admin identity, or fails', async () => {
    const nodeId = newNodeId();
    const admin = await issueNodeCredentials(ca, { nodeId, role: 'admin' });
    const context = await contextWith(admin);
    const later = validity(admin.certPem).from + 60 * DAY_MS;
    const cases: Array<{ renew: NonNullable<AdminRenewalOptions['renew']>; warning: RegExp }> = [
      { renew: signingRenewer(nodeId, 'worker', { count: 0 }), warning: /issued a certificate for .* with role worker, not an admin certificate for / },
      { renew: signingRenewer(newNodeId(), 'admin', { count: 0 }), warning: /issued a certificate for .* with role admin, not an admin certificate for / },
      { renew: () => Promise.reject(new Error('10.0.0.1:4243: connect ECONNREFUSED')), warning: /cannot renew the admin certificate of context "t" \(it expires .*\): 10\.0\.0\.1:4243: connect ECONNREFUSED/ },
    ];
    for (const { renew, warning } of cases) {
      const warnings: string[] = [];
      const used = await freshAdminCredential(context, admin, { now: () => later, renew, warn: (line) => warnings.push(line) });
      expect(used).toBe(admin);
      expect(warnings).toEqual([expect.stringMatching(warning)]);
      expect(await readFile(context.certPath, 'utf8')).toBe(admin.certPem);
      expect(await readFile(context.keyPath, 'utf8')).toBe(admin.keyPem);
    }
  });

  it('refuses an expired credential, naming the file and the date', async () => {
    const admin = await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'admin' });
    const context = await contextWith(admin);
    const after = validity(admin.certPem).to + 1;
    await expect(freshAdminCredential(context, admin, { now: () => after })).rejects.toThrow(new RegExp(`^cannot use context "t": its admin certificate ${context.certPath} expired on `));
  });
});
