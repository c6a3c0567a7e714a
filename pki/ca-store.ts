// The cluster CA on a manager's disk: <dir>/ca.crt and <dir>/ca.key (0600). Creating one never
// overwrites an existing CA: that would orphan every certificate the old one issued.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { certificateIdentityOfCa, issueCertificate, type CertificateAuthority, type NodeRole } from './certificate-authority.js';
import { CA_CERT_FILE, writeFileAtomic, type NodeCredentials } from './credentials-store.js';
import { PkiError } from './errors.js';

export const CA_KEY_FILE = 'ca.key';
/** What `skiff init` decided for the new cluster, read once by its first manager. */
export const BOOTSTRAP_FILE = 'bootstrap.json';

/** Join tokens and certificate lifetime chosen at `skiff init`, before any manager runs. */
export interface ClusterBootstrap {
  workerToken: string;
  managerToken: string;
  /** 0 means the default lifetime. */
  certExpiryMs: number;
  /** Network subnets come from this CIDR (`--default-addr-pool`); absent = 10.0.0.0/8. */
  defaultAddressPool?: string;
  /** Prefix length of each network's subnet; absent = 24. */
  defaultSubnetSize?: number;
}

export async function writeClusterBootstrap(dir: string, bootstrap: ClusterBootstrap): Promise<void> {
  await writeFileAtomic(join(dir, BOOTSTRAP_FILE), `${JSON.stringify(bootstrap, null, 2)}\n`, 0o600);
}

/** The bootstrap file in `dir`, or undefined when there is none; a damaged one names the file. */
export async function readClusterBootstrap(dir: string): Promise<ClusterBootstrap | undefined> {
  const path = join(dir, BOOTSTRAP_FILE);
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<ClusterBootstrap>;
    if (typeof value.workerToken === 'string' && typeof value.managerToken === 'string' && typeof value.certExpiryMs === 'number') {
      return {
        workerToken: value.workerToken,
        managerToken: value.managerToken,
        certExpiryMs: value.certExpiryMs,
        ...(typeof value.defaultAddressPool === 'string' ? { defaultAddressPool: value.defaultAddressPool } : {}),
        ...(typeof value.defaultSubnetSize === 'number' ? { defaultSubnetSize: value.defaultSubnetSize } : {}),
      };
    }
  } catch {
    // Reported below.
  }
  throw new PkiError('credentials_corrupt', `cannot read cluster bootstrap: ${path} is not {workerToken, managerToken, certExpiryMs}`);
}

/**
 * Writes `ca` into `dir` (created 0700 if missing). Refuses, naming the file, when a CA
 * certificate or key is already there.
 */
export async function writeCertificateAuthority(dir: string, ca: CertificateAuthority): Promise<void> {
  for (const file of [CA_CERT_FILE, CA_KEY_FILE]) {
    const path = join(dir, file);
    if (await exists(path)) {
      throw new PkiError('already_exists', `cannot create certificate authority: ${path} already exists (remove it to start a new cluster)`);
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(dir, CA_KEY_FILE), ca.keyPem, 0o600);
  await writeFileAtomic(join(dir, CA_CERT_FILE), ca.certPem, 0o644);
}

/** Reads the CA in `dir`; the cluster id comes from the certificate's O. Errors name the file. */
export async function readCertificateAuthority(dir: string): Promise<CertificateAuthority> {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  const certPem = await readFile(certPath, 'utf8').catch(() => {
    throw new PkiError('credentials_missing', `cannot read certificate authority: ${certPath} does not exist or is unreadable`);
  });
  const keyPem = await readFile(keyPath, 'utf8').catch(() => {
    throw new PkiError('credentials_missing', `cannot read certificate authority: ${keyPath} does not exist or is unreadable`);
  });
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new PkiError('credentials_corrupt', `cannot read certificate authority: ${certPath} is not a PEM certificate`);
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error('mismatch');
  } catch {
    throw new PkiError('credentials_corrupt', `cannot read certificate authority: ${keyPath} is not the key of ${certPath}`);
  }
  const clusterId = certificateIdentityOfCa(certPem);
  if (clusterId === undefined) {
    throw new PkiError('credentials_corrupt', `cannot read certificate authority: ${certPath} is not a Skiff root CA (no O = cluster id)`);
  }
  return { clusterId, certPem, keyPem };
}

/** Issues a node's (or an admin's) full credentials: its certificate and key plus the CA to trust. */
export async function issueNodeCredentials(
  ca: CertificateAuthority,
  request: { nodeId: string; role: NodeRole; ipAddresses?: string[]; dnsNames?: string[]; lifetimeMs?: number },
): Promise<NodeCredentials> {
  const issued = await issueCertificate(ca, {
    commonName: request.nodeId,
    role: request.role,
    ipAddresses: request.ipAddresses ?? [],
    dnsNames: request.dnsNames ?? [],
    ...(request.lifetimeMs === undefined ? {} : { lifetimeMs: request.lifetimeMs }),
  });
  return { caCertPem: ca.certPem, certPem: issued.certPem, keyPem: issued.keyPem };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
