import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import * as x509 from './x509.js';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CERTIFICATE_LIFETIME_DAYS,
  ID_LENGTH,
  MANAGER_TLS_NAME,
  ROOT_CA_COMMON_NAME,
  certificateIdentity,
  createCertificateAuthority,
  crossSignCertificateAuthority,
  issueCertificate,
  newNodeId,
} from './certificate-authority.js';
import { PkiError } from './errors.js';

const MS_PER_DAY = 24 * 60 * 60 * 1000;
const CLOCK_TOLERANCE_MS = 10 * 60 * 1000;

function extension<T extends x509.Extension>(cert: x509.X509Certificate, type: new (raw: BufferSource) => T): T {
  const found = cert.getExtension(type);
  if (found === null) throw new Error(`certificate lacks ${type.name}`);
  return found;
}

describe('newNodeId', () => {
  it('newNodeId returns distinct 25-character lowercase alphanumeric ids', () => {
    const ids = new Set(Array.from({ length: 200 }, () => newNodeId()));
    expect(ids.size).toBe(200);
    for (const id of ids) expect(id).toMatch(new RegExp(`^[a-z0-9]{${ID_LENGTH}}$`));
  });
});

describe('createCertificateAuthority', () => {
  it('createCertificateAuthority makes a self-signed P-256 CA named after the cluster', async () => {
    const ca = await createCertificateAuthority({ clusterId: 'cluster1' });
    expect(ca.clusterId).toBe('cluster1');
    const cert = new x509.X509Certificate(ca.certPem);
    expect(cert.subjectName.getField('CN')).toEqual([ROOT_CA_COMMON_NAME]);
    expect(cert.subjectName.getField('O')).toEqual(['cluster1']);
    expect(await cert.isSelfSigned()).toBe(true);
    expect(extension(cert, x509.BasicConstraintsExtension).ca).toBe(true);
    expect(cert.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    expect(ca.keyPem).toContain('BEGIN PRIVATE KEY');
  });

  it('createCertificateAuthority picks a random cluster id when none is given', async () => {
    const first = await createCertificateAuthority();
    const second = await createCertificateAuthority();
    expect(first.clusterId).toMatch(/^[a-z0-9]{25}$/);
    expect(first.clusterId).not.toBe(second.clusterId);
  });

  it('createCertificateAuthority refuses a cluster id that cannot sit in a name', async () => {
    await expect(createCertificateAuthority({ clusterId: 'a,b=c' })).rejects.toThrow(/clusterId/);
  });
});

describe('issueCertificate', () => {
  it('issueCertificate puts node id, role and cluster id in CN, OU and O and chains to the CA', async () => {
    const ca = await createCertificateAuthority();
    const nodeId = newNodeId();
    const issued = await issueCertificate(ca, { commonName: nodeId, role: 'worker' });
    const cert = new x509.X509Certificate(issued.certPem);
    expect(cert.subjectName.getField('CN')).toEqual([nodeId]);
    expect(cert.subjectName.getField('OU')).toEqual(['worker']);
    expect(cert.subjectName.getField('O')).toEqual([ca.clusterId]);
    expect(cert.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    expect(await cert.verify({ publicKey: new x509.X509Certificate(ca.certPem).publicKey, signatureOnly: true })).toBe(true);
    expect(extension(cert, x509.ExtendedKeyUsageExtension).usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
    expect(cert.getExtension(x509.SubjectAlternativeNameExtension)).toBeNull();
    // Node's own parser agrees, and the key belongs to the certificate.
    const nodeCert = new NodeX509Certificate(issued.certPem);
    expect(nodeCert.checkIssued(new NodeX509Certificate(ca.certPem))).toBe(true);
    expect(certificateIdentity(issued.certPem)).toEqual({ nodeId, role: 'worker', clusterId: ca.clusterId });
  });

  it('issueCertificate gives managers the manager TLS name, their IPs and server plus client auth', async () => {
    const ca = await createCertificateAuthority();
    const issued = await issueCertificate(ca, { commonName: newNodeId(), role: 'manager', ipAddresses: ['198.18.0.11'], dnsNames: ['h1'] });
    const cert = new x509.X509Certificate(issued.certPem);
    const names = extension(cert, x509.SubjectAlternativeNameExtension).names.toJSON();
    expect(names).toEqual([
      { type: 'dns', value: MANAGER_TLS_NAME },
      { type: 'dns', value: 'h1' },
      { type: 'ip', value: '198.18.0.11' },
    ]);
    expect(extension(cert, x509.ExtendedKeyUsageExtension).usages).toEqual([
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]);
    expect(new NodeX509Certificate(issued.certPem).checkHost(MANAGER_TLS_NAME)).toBe(MANAGER_TLS_NAME);
  });

  it('issueCertificate defaults to a 90-day lifetime and honours lifetimeDays', async () => {
    const ca = await createCertificateAuthority();
    const now = Date.now();
    const byDefault = new x509.X509Certificate((await issueCertificate(ca, { commonName: 'n1', role: 'admin' })).certPem);
    expect(Math.abs(byDefault.notAfter.getTime() - (now + DEFAULT_CERTIFICATE_LIFETIME_DAYS * MS_PER_DAY))).toBeLessThan(CLOCK_TOLERANCE_MS);
    expect(byDefault.notBefore.getTime()).toBeLessThanOrEqual(now);
    const short = new x509.X509Certificate((await issueCertificate(ca, { commonName: 'n1', role: 'admin', lifetimeDays: 1 })).certPem);
    expect(Math.abs(short.notAfter.getTime() - (now + MS_PER_DAY))).toBeLessThan(CLOCK_TOLERANCE_MS);
  });

  it('issueCertificate rejects bad input naming the field', async () => {
    const ca = await createCertificateAuthority();
    await expect(issueCertificate(ca, { commonName: '', role: 'worker' })).rejects.toThrow(/commonName/);
    await expect(issueCertificate(ca, { commonName: 'n', role: 'worker', lifetimeDays: -1 })).rejects.toThrow(/lifetime -86400000 ms is outside/);
    await expect(issueCertificate(ca, { commonName: 'n', role: 'worker', ipAddresses: ['not-an-ip'] })).rejects.toThrow(/ipAddresses/);
    await expect(issueCertificate(ca, { commonName: 'n', role: 'worker', ipAddresses: ['x'] })).rejects.toBeInstanceOf(PkiError);
  });
});

describe('certificateIdentity', () => {
  it('certificateIdentity is undefined for garbage and for certificates without a role', async () => {
    expect(certificateIdentity('not a certificate')).toBeUndefined();
    const ca = await createCertificateAuthority();
    expect(certificateIdentity(ca.certPem)).toBeUndefined();
  });
});

describe('crossSignCertificateAuthority', () => {
  it('signs the new root with the old key, keeping the new key and name', async () => {
    const previous = await createCertificateAuthority();
    const next = await createCertificateAuthority({ clusterId: previous.clusterId });
    const cross = new NodeX509Certificate(await crossSignCertificateAuthority(previous, next));
    const oldRoot = new NodeX509Certificate(previous.certPem);
    const newRoot = new NodeX509Certificate(next.certPem);
    expect(cross.verify(oldRoot.publicKey)).toBe(true);
    expect(cross.verify(newRoot.publicKey)).toBe(false);
    expect(cross.publicKey.export({ format: 'der', type: 'spki' })).toEqual(newRoot.publicKey.export({ format: 'der', type: 'spki' }));
    expect(cross.subject).toBe(newRoot.subject);
    expect(cross.ca).toBe(true);
  });
});
