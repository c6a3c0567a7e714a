/**
 * The CLI keeps its admin credential fresh, as skiffd keeps a node's: once half of the
 * certificate's validity has passed, the next command first asks a manager of the context for a
 * new one (a fresh key; the cluster's certificate lifetime; its current root CA, so a CA rotation
 * reaches the CLI too). The renewal is always an admin certificate for the same identity. If it
 * fails, the command warns and goes on with the credential it has; an expired one is named as
 * such instead of failing as an unreachable manager.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { certificateIdentity } from '../pki/certificate-identity.js';
import { CERT_MODE, KEY_MODE, writeFileAtomic, type NodeCredentials } from '../pki/credentials-store.js';
import { RENEW_AT_MIN_FRACTION } from '../pki/renewal.js';
import { CliError } from './cli-error.js';
import { withConfigLock, type LoadedContext } from './context.js';

export type AdminCertificateState = 'fresh' | 'due' | 'expired';

/** Whether a certificate is fresh, due for renewal (past half its validity) or expired at `nowMs`. */
export function adminCertificateState(certPem: string, nowMs: number): AdminCertificateState {
  const cert = new X509Certificate(certPem);
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (nowMs >= to) return 'expired';
  return nowMs >= from + (to - from) * RENEW_AT_MIN_FRACTION ? 'due' : 'fresh';
}

export interface AdminRenewalOptions {
  now?: () => number;
  /** Where a failed renewal is reported; stderr by default. */
  warn?: (line: string) => void;
  /** Sends the certificate request to the context's managers; the NodeCA service by default. */
  renew?: (managers: readonly string[], credentials: NodeCredentials, csrDer: Uint8Array) => Promise<{ certPem: string; caCertPem: string }>;
}

/**
 * The context's credential to use now: `credentials` as read, or a renewed one (already on disk)
 * when it was due. Throws a CliError naming the file when the certificate has expired.
 */
export async function freshAdminCredential(context: LoadedContext, credentials: NodeCredentials, options: AdminRenewalOptions = {}): Promise<NodeCredentials> {
  const now = options.now ?? Date.now;
  let state: AdminCertificateState;
  try {
    state = adminCertificateState(credentials.certPem, now());
  } catch (error) {
    throw new CliError(`cannot read ${context.certPath} of context "${context.name}": ${error instanceof Error ? error.message : String(error)}`);
  }
  if (state === 'expired') {
    throw new CliError(
      `cannot use context "${context.name}": its admin certificate ${context.certPath} expired on ${new X509Certificate(credentials.certPem).validTo}; ` +
        'the CLI renews it once half its validity has passed, but was not run since; on a manager host, `skiff -H unix:///run/skiff/skiff.sock context create NAME --use` makes a new one',
    );
  }
  if (state === 'fresh') return credentials;
  return renewAdminCredential(context, credentials, { ...options, force: false });
}

/**
 * Renews the context's admin credential now (`force`: even if another CLI just renewed it, as
 * after `skiff ca rotate`). Returns the credential to use: the renewed one, or on failure (after
 * a warning) the one it had.
 */
export async function renewAdminCredential(context: LoadedContext, credentials: NodeCredentials, options: AdminRenewalOptions & { force: boolean }): Promise<NodeCredentials> {
  const now = options.now ?? Date.now;
  try {
    return await withConfigLock(() => renewUnderLock(context, credentials, options, now));
  } catch (error) {
    const expires = new X509Certificate(credentials.certPem).validTo;
    (options.warn ?? ((line) => process.stderr.write(`${line}\n`)))(
      `warning: cannot renew the admin certificate of context "${context.name}" (it expires ${expires}): ${error instanceof Error ? error.message : String(error)}`,
    );
    return credentials;
  }
}

async function renewUnderLock(context: LoadedContext, credentials: NodeCredentials, options: AdminRenewalOptions & { force: boolean }, now: () => number): Promise<NodeCredentials> {
  // Another CLI may have renewed it while this one waited for the lock.
  const onDisk = await readContextFiles(context);
  if (!options.force && onDisk.certPem !== credentials.certPem && adminCertificateState(onDisk.certPem, now()) === 'fresh') return onDisk;
  const identity = certificateIdentity(credentials.certPem);
  if (identity?.role !== 'admin') throw new Error(`${context.certPath} is not an admin certificate`);
  // Imported here (and the NodeCA client below): the x509 code is large and renewal is rare.
  const { createCertificateRequest } = await import('../pki/certificate-authority.js');
  const request = await createCertificateRequest();
  const renew =
    options.renew ??
    (async (managers: readonly string[], current: NodeCredentials, csr: Uint8Array) => (await import('./renew-certificate.js')).renewCertificate(managers, current, csr, ''));
  const issued = await renew(context.managers, credentials, request.csrDer);
  const next: NodeCredentials = { caCertPem: issued.caCertPem, certPem: issued.certPem, keyPem: request.keyPem };
  const renewed = certificateIdentity(next.certPem);
  if (renewed?.role !== 'admin' || renewed.nodeId !== identity.nodeId) {
    throw new Error(`the manager issued ${renewed === undefined ? 'no Skiff certificate' : `a certificate for ${renewed.nodeId} with role ${renewed.role}`}, not an admin certificate for ${identity.nodeId}`);
  }
  if (!new X509Certificate(next.certPem).checkPrivateKey(createPrivateKey(next.keyPem))) throw new Error('the issued certificate is not for the key we sent');
  // The key first, as skiffd writes a node's: the new certificate is never paired with the old key for long.
  await writeFileAtomic(context.keyPath, next.keyPem, KEY_MODE);
  await writeFileAtomic(context.certPath, next.certPem, CERT_MODE);
  await writeFileAtomic(context.caCertPath, next.caCertPem, CERT_MODE);
  return next;
}

/** The context's three credential files as PEM text; a CliError names a file that cannot be read. */
export async function readContextFiles(context: LoadedContext): Promise<NodeCredentials> {
  const [caCertPem, certPem, keyPem] = await Promise.all(
    [context.caCertPath, context.certPath, context.keyPath].map((path) =>
      readFile(path, 'utf8').catch(() => {
        throw new CliError(`cannot read ${path} of context "${context.name}"`);
      }),
    ),
  );
  return { caCertPem: caCertPem ?? '', certPem: certPem ?? '', keyPem: keyPem ?? '' };
}
