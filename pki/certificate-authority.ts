// The cluster root CA and the certificates it issues (DESIGN.md §9): ECDSA P-256 keys, node
// certificates with CN = node id, OU = role, O = cluster id. Keys leave this module as PKCS#8 PEM.
import { randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from './x509.js';
import { PkiError } from './errors.js';
import { MANAGER_TLS_NAME, NODE_ROLES, ROOT_CA_COMMON_NAME, type NodeRole } from './certificate-identity.js';

export { MANAGER_TLS_NAME, NODE_ROLES, ROOT_CA_COMMON_NAME, certificateIdentity, certificateIdentityOfCa, isNodeRole, type CertificateIdentity, type NodeRole } from './certificate-identity.js';

/** Common name of every Skiff root CA. */

/** DNS name that every manager certificate carries; clients override the TLS target name to it. */

/** Default lifetime of a node or admin certificate. */
export const DEFAULT_CERTIFICATE_LIFETIME_DAYS = 90;
/** Upper bound on a requested lifetime, so a typo cannot mint a practically eternal credential. */
export const MAX_CERTIFICATE_LIFETIME_DAYS = 3650;
/** Lifetime of the root CA (as in swarmkit: 20 years). */
export const ROOT_CA_LIFETIME_DAYS = 20 * 365;
/** Certificates start this long before "now" so a peer whose clock lags a little accepts them. */
export const NOT_BEFORE_BACKDATE_MS = 5 * 60 * 1000;
/** Shortest certificate lifetime we issue (tests of renewal use tens of seconds). */
export const MIN_CERTIFICATE_LIFETIME_MS = 10_000;
/** Length of node and cluster ids: 128 random bits in base 36, like swarm ids. */
export const ID_LENGTH = 25;
const ID_RANDOM_BYTES = 16;
const MS_PER_DAY = 24 * 60 * 60 * 1000;

/** A node's role, carried in the OU of its certificate. */


/** The cluster root CA. `keyPem` is the CA's private key: only managers (and `skiff init`) hold it. */
export interface CertificateAuthority {
  clusterId: string;
  certPem: string;
  keyPem: string;
}

/** What `issueCertificate` is asked for. */
export interface IssueRequest {
  /** The node id (or admin client id): becomes the CN. */
  commonName: string;
  role: NodeRole;
  lifetimeDays?: number;
  /** Lifetime in milliseconds; wins over lifetimeDays (short lifetimes exercise renewal). */
  lifetimeMs?: number;
  dnsNames?: string[];
  ipAddresses?: string[];
}

/** A certificate and its private key, both PEM. */
export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}


const crypto = webcrypto as unknown as Crypto;
const KEY_ALGORITHM: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** A fresh random id: ID_LENGTH characters of [a-z0-9], unpredictable (128 bits). */
export function newNodeId(): string {
  const value = BigInt(`0x${randomBytes(ID_RANDOM_BYTES).toString('hex')}`);
  return value.toString(36).padStart(ID_LENGTH, '0');
}

/** Creates a new self-signed root CA for a cluster; `clusterId` is random when absent. */
export async function createCertificateAuthority(
  options: { clusterId?: string } = {},
): Promise<CertificateAuthority> {
  const clusterId = options.clusterId ?? newNodeId();
  checkNameComponent('clusterId', clusterId);
  const keys = await generateKeyPair();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerialNumber(),
      name: [{ CN: [ROOT_CA_COMMON_NAME] }, { O: [clusterId] }],
      notBefore: new Date(now - NOT_BEFORE_BACKDATE_MS),
      notAfter: new Date(now + ROOT_CA_LIFETIME_DAYS * MS_PER_DAY),
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { clusterId, certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/**
 * Issues a certificate for a node or an admin client, signed by `ca`. Manager certificates always
 * carry the DNS name MANAGER_TLS_NAME and both server and client auth; others get client auth only.
 */
export async function issueCertificate(ca: CertificateAuthority, request: IssueRequest): Promise<IssuedCertificate> {
  const keys = await generateKeyPair();
  const certPem = await issueCertificateForKey(ca, request, keys.publicKey);
  return { certPem, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/**
 * Issues a certificate for a public key whose private key stays with its owner (a joining or
 * renewing node sends a certificate request). Same rules as `issueCertificate`.
 */
export async function issueCertificateForKey(ca: CertificateAuthority, request: IssueRequest, publicKey: CryptoKey): Promise<string> {
  checkNameComponent('commonName', request.commonName);
  if (!NODE_ROLES.includes(request.role)) {
    throw new PkiError('invalid_request', `cannot issue certificate: role "${String(request.role)}" is not one of ${NODE_ROLES.join(', ')}`);
  }
  const lifetimeMs = request.lifetimeMs ?? (request.lifetimeDays ?? DEFAULT_CERTIFICATE_LIFETIME_DAYS) * MS_PER_DAY;
  if (!Number.isFinite(lifetimeMs) || lifetimeMs < MIN_CERTIFICATE_LIFETIME_MS || lifetimeMs > MAX_CERTIFICATE_LIFETIME_DAYS * MS_PER_DAY) {
    throw new PkiError('invalid_request', `cannot issue certificate: lifetime ${lifetimeMs} ms is outside [${MIN_CERTIFICATE_LIFETIME_MS} ms, ${MAX_CERTIFICATE_LIFETIME_DAYS} days]`);
  }
  const ips = request.ipAddresses ?? [];
  for (const ip of ips) {
    if (isIP(ip) === 0) throw new PkiError('invalid_request', `cannot issue certificate: ipAddresses entry "${ip}" is not an IP address`);
  }
  const dnsNames = [...(request.dnsNames ?? [])];
  if (request.role === 'manager' && !dnsNames.includes(MANAGER_TLS_NAME)) dnsNames.unshift(MANAGER_TLS_NAME);

  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKeyPem(ca.keyPem);
  const now = Date.now();
  const usages = request.role === 'manager'
    ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
    : [x509.ExtendedKeyUsage.clientAuth];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension(usages, false),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
    await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto),
  ];
  const names: x509.JsonGeneralName[] = [
    ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...ips.map((value) => ({ type: 'ip' as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialNumber(),
      subject: [{ CN: [request.commonName] }, { OU: [request.role] }, { O: [ca.clusterId] }],
      issuer: caCert.subjectName,
      // A short-lived certificate is backdated less, so most of its validity lies ahead.
      notBefore: new Date(now - Math.min(NOT_BEFORE_BACKDATE_MS, lifetimeMs / 10)),
      notAfter: new Date(now + lifetimeMs),
      publicKey,
      signingKey: caKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions,
    },
    crypto,
  );
  return cert.toString('pem');
}

/**
 * The new root's certificate signed by the old root (`skiff ca rotate`): a node that still
 * trusts only the old root verifies a chain leaf -> this -> old root, so old and new certificates
 * work together while the cluster renews.
 */
export async function crossSignCertificateAuthority(previous: CertificateAuthority, next: CertificateAuthority): Promise<string> {
  const previousCert = new x509.X509Certificate(previous.certPem);
  const nextCert = new x509.X509Certificate(next.certPem);
  const signingKey = await importPrivateKeyPem(previous.keyPem);
  const publicKey = await nextCert.publicKey.export(KEY_ALGORITHM, ['verify'], crypto);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialNumber(),
      subject: nextCert.subjectName,
      issuer: previousCert.subjectName,
      notBefore: nextCert.notBefore,
      notAfter: previousCert.notAfter < nextCert.notAfter ? previousCert.notAfter : nextCert.notAfter,
      publicKey,
      signingKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(previousCert.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return cert.toString('pem');
}

/** A fresh key pair and a PKCS#10 request for it (DER): what a joining or renewing node sends. */
export async function createCertificateRequest(): Promise<{ csrDer: Uint8Array; keyPem: string }> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: [{ CN: ['skiff-node'] }], keys, signingAlgorithm: SIGNING_ALGORITHM }, crypto);
  return { csrDer: new Uint8Array(csr.rawData), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/**
 * The public key of a PKCS#10 request, after checking its signature (the sender holds the
 * private key). The request's subject is ignored: the CA decides every name.
 */
export async function publicKeyOfCertificateRequest(csrDer: Uint8Array): Promise<CryptoKey> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(Buffer.from(csrDer));
  } catch (error) {
    throw new PkiError('invalid_request', `cannot issue certificate: csr is not a DER PKCS#10 request (${String(error)})`);
  }
  let valid = false;
  let key: CryptoKey | undefined;
  try {
    key = await csr.publicKey.export(KEY_ALGORITHM, ['verify'], crypto);
    valid = await csr.verify(crypto);
  } catch {
    valid = false;
  }
  if (!valid || key === undefined) throw new PkiError('invalid_request', 'cannot issue certificate: csr must be signed by an ECDSA P-256 key it carries');
  return key;
}

// Ids land in a distinguished name: keep them to a plain, printable alphabet.
const NAME_COMPONENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function checkNameComponent(field: string, value: string): void {
  if (!NAME_COMPONENT.test(value)) {
    throw new PkiError('invalid_request', `cannot issue certificate: ${field} "${value}" must match ${NAME_COMPONENT.source}`);
  }
}

async function generateKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

function randomSerialNumber(): string {
  // 16 bytes with the top bit clear: a positive INTEGER, as RFC 5280 requires.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f | 0x01;
  return bytes.toString('hex');
}

async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key));
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const match = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/.exec(pem);
  if (!match?.[1]) throw new PkiError('invalid_request', 'cannot issue certificate: CA keyPem is not a PKCS#8 PEM private key');
  const der = Buffer.from(match[1].replace(/\s+/g, ''), 'base64');
  try {
    return await crypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
  } catch (error) {
    throw new PkiError('invalid_request', `cannot issue certificate: CA keyPem is not an ECDSA P-256 key (${String(error)})`);
  }
}
