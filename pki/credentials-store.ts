// A node's TLS credentials on disk: one directory holding ca.crt, node.crt and node.key. Writes
// are atomic per file (temp + rename); reads validate every file once, at the edge.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PkiError } from './errors.js';

/** What a node (or the CLI) presents and trusts: the cluster CA, its own certificate and key. */
export interface NodeCredentials {
  caCertPem: string;
  certPem: string;
  keyPem: string;
}

/** File names inside a credentials directory. Other engineers' code and docs rely on these. */
export const CA_CERT_FILE = 'ca.crt';
export const NODE_CERT_FILE = 'node.crt';
export const NODE_KEY_FILE = 'node.key';

const CERT_MODE = 0o644;
const KEY_MODE = 0o600;
const DIRECTORY_MODE = 0o700;

/**
 * Writes `creds` into `dir` (created if missing). Each file is replaced atomically, so a reader
 * sees either the old or the new file, never a torn one; the key is mode 0600 from its first byte.
 */
export async function writeCredentials(dir: string, creds: NodeCredentials): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIRECTORY_MODE });
  // The key first: a reader that sees the new certificate must not pair it with the old key for long.
  await writeFileAtomic(join(dir, NODE_KEY_FILE), creds.keyPem, KEY_MODE);
  await writeFileAtomic(join(dir, NODE_CERT_FILE), creds.certPem, CERT_MODE);
  await writeFileAtomic(join(dir, CA_CERT_FILE), creds.caCertPem, CERT_MODE);
}

/**
 * Reads and validates the credentials in `dir`: every file must exist and parse, the key must match
 * the certificate, and the certificate must be signed by the CA. Errors name the file at fault.
 */
export async function readCredentials(dir: string): Promise<NodeCredentials> {
  const caCertPem = await readOne(dir, CA_CERT_FILE);
  const certPem = await readOne(dir, NODE_CERT_FILE);
  const keyPem = await readOne(dir, NODE_KEY_FILE);
  const caCert = parseCertificate(dir, CA_CERT_FILE, caCertPem);
  const cert = parseCertificate(dir, NODE_CERT_FILE, certPem);
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw corrupt(dir, NODE_KEY_FILE, `not a PEM private key (${describe(error)})`);
  }
  if (!cert.checkPrivateKey(key)) throw corrupt(dir, NODE_KEY_FILE, `does not match the public key of ${NODE_CERT_FILE}`);
  if (!cert.verify(caCert.publicKey)) throw corrupt(dir, NODE_CERT_FILE, `is not signed by the CA in ${CA_CERT_FILE}`);
  return { caCertPem, certPem, keyPem };
}

/** Writes `contents` to `path` through a temporary file in the same directory and a rename. */
export async function writeFileAtomic(path: string, contents: string, mode: number): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}-${Date.now()}`;
  const handle = await open(temporary, 'wx', mode);
  try {
    await handle.writeFile(contents);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

async function readOne(dir: string, file: string): Promise<string> {
  try {
    return await readFile(join(dir, file), 'utf8');
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') {
      throw new PkiError('credentials_missing', `cannot read credentials: ${join(dir, file)} does not exist`);
    }
    throw new PkiError('credentials_missing', `cannot read credentials: ${join(dir, file)}: ${describe(error)}`);
  }
}

function parseCertificate(dir: string, file: string, pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw corrupt(dir, file, `is not a PEM certificate (${describe(error)})`);
  }
}

function corrupt(dir: string, file: string, reason: string): PkiError {
  return new PkiError('credentials_corrupt', `cannot read credentials: ${join(dir, file)} ${reason}`);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && 'code' in error;
}
