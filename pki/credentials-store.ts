// A node's TLS credentials on disk: one directory holding ca.crt, node.crt and node.key. Writes
// are atomic per file (temp + rename); reads validate every file once, at the edge. On an
// autolocked manager node.key is an encrypted PKCS#8 PEM whose passphrase is the unlock key.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { certificateIdentity, type NodeRole } from './certificate-identity.js';
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

/** How node.key is protected: without a passphrase it is a plain PKCS#8 PEM. */
export interface KeyPassphraseOptions {
  keyPassphrase?: string;
}

/** PBES2 (PBKDF2-SHA256) with AES-256-CBC: what OpenSSL writes for an encrypted PKCS#8 key. */
const KEY_CIPHER = 'aes-256-cbc';
const ENCRYPTED_PEM = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/;
export const CERT_MODE = 0o644;
export const KEY_MODE = 0o600;
const DIRECTORY_MODE = 0o700;

/**
 * Writes `creds` into `dir` (created if missing). Each file is replaced atomically, so a reader
 * sees either the old or the new file, never a torn one; the key is mode 0600 from its first byte,
 * and encrypted under `keyPassphrase` when one is given.
 */
export async function writeCredentials(dir: string, creds: NodeCredentials, options: KeyPassphraseOptions = {}): Promise<void> {
  const keyFile = options.keyPassphrase === undefined ? creds.keyPem : encryptKey(parseKeyToWrite(creds.keyPem), options.keyPassphrase);
  await mkdir(dir, { recursive: true, mode: DIRECTORY_MODE });
  // The key first: a reader that sees the new certificate must not pair it with the old key for long.
  await writeFileAtomic(join(dir, NODE_KEY_FILE), keyFile, KEY_MODE);
  await writeFileAtomic(join(dir, NODE_CERT_FILE), creds.certPem, CERT_MODE);
  await writeFileAtomic(join(dir, CA_CERT_FILE), creds.caCertPem, CERT_MODE);
}

/**
 * Reads and validates the credentials in `dir`: every file must exist and parse, the key must match
 * the certificate, and the certificate must be signed by the CA. Errors name the file at fault. An
 * encrypted node.key needs `keyPassphrase` (else 'credentials_locked'); a plain one is read as is,
 * passphrase or not. The returned keyPem is always the plaintext PEM (grpc-js takes it as is).
 */
export async function readCredentials(dir: string, options: KeyPassphraseOptions = {}): Promise<NodeCredentials> {
  const caCertPem = await readOne(dir, CA_CERT_FILE);
  const certPem = await readOne(dir, NODE_CERT_FILE);
  const keyFile = await readOne(dir, NODE_KEY_FILE);
  const caCert = parseCertificate(dir, CA_CERT_FILE, caCertPem);
  const cert = parseCertificate(dir, NODE_CERT_FILE, certPem);
  const { key, keyPem } = openKey(dir, keyFile, options.keyPassphrase);
  if (!cert.checkPrivateKey(key)) throw corrupt(dir, NODE_KEY_FILE, `does not match the public key of ${NODE_CERT_FILE}`);
  if (!cert.verify(caCert.publicKey)) throw corrupt(dir, NODE_CERT_FILE, `is not signed by the CA in ${CA_CERT_FILE}`);
  return { caCertPem, certPem, keyPem };
}

/**
 * The role node.crt in `dir` gives (the cluster's decision: promote and demote renew it);
 * undefined when there is no readable Skiff node certificate. Reads only the public certificate,
 * so it works while node.key is still locked.
 */
export async function certificateRoleIn(dir: string): Promise<NodeRole | undefined> {
  return certificateIdentity(await readFile(join(dir, NODE_CERT_FILE), 'utf8').catch(() => ''))?.role;
}

/** Whether node.key in `dir` is encrypted (the manager is autolocked). */
export async function isKeyEncrypted(dir: string): Promise<boolean> {
  return ENCRYPTED_PEM.test(await readOne(dir, NODE_KEY_FILE));
}

/**
 * Rewrites node.key in `dir` atomically: encrypted under `keyPassphrase`, or plain when it is
 * undefined. An encrypted key is opened with `currentPassphrase`, or with `keyPassphrase` when it
 * is already encrypted under that one, so repeating a call after a crash is harmless.
 */
export async function rewrapNodeKey(dir: string, keyPassphrase: string | undefined, currentPassphrase?: string): Promise<void> {
  const current = await readOne(dir, NODE_KEY_FILE);
  if (!ENCRYPTED_PEM.test(current) && keyPassphrase === undefined) return;
  const opened = openKeyWithFirst(dir, current, [currentPassphrase, keyPassphrase]);
  const rewritten = keyPassphrase === undefined ? opened.keyPem : encryptKey(opened.key, keyPassphrase);
  await writeFileAtomic(join(dir, NODE_KEY_FILE), rewritten, KEY_MODE);
}

/** Parses node.key as read from disk; `keyPem` is its plaintext PEM whether or not the file is encrypted. */
function openKey(dir: string, file: string, passphrase: string | undefined): { key: KeyObject; keyPem: string } {
  const path = join(dir, NODE_KEY_FILE);
  if (!ENCRYPTED_PEM.test(file)) {
    try {
      return { key: createPrivateKey(file), keyPem: file };
    } catch (error) {
      throw corrupt(dir, NODE_KEY_FILE, `not a PEM private key (${describe(error)})`);
    }
  }
  if (passphrase === undefined) {
    throw new PkiError('credentials_locked', `cannot read credentials: ${path} is an encrypted private key and no passphrase was given (the manager is autolocked: run \`skiff unlock\`)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: file, format: 'pem', passphrase });
  } catch (error) {
    // A wrong passphrase usually fails the cipher's padding check (ERR_OSSL_BAD_DECRYPT), but about
    // one time in 256 the padding happens to pass and the garbage then fails to decode as a key.
    // Both mean "this passphrase does not open it": the caller may try the next one.
    const reason = isErrnoException(error) && error.code === 'ERR_OSSL_BAD_DECRYPT' ? 'wrong unlock key' : `wrong unlock key, or the file is damaged: ${describe(error)}`;
    throw new PkiError('credentials_locked', `cannot read credentials: ${path} is an encrypted private key and the passphrase does not decrypt it (${reason})`);
  }
  return { key, keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** openKey with the first of `passphrases` that decrypts; if none does, the last failure. */
function openKeyWithFirst(dir: string, file: string, passphrases: Array<string | undefined>): { key: KeyObject; keyPem: string } {
  const candidates = passphrases.filter((passphrase) => passphrase !== undefined);
  let failure: unknown;
  for (const passphrase of candidates.length === 0 ? [undefined] : candidates) {
    try {
      return openKey(dir, file, passphrase);
    } catch (error) {
      if (!(error instanceof PkiError && error.code === 'credentials_locked')) throw error;
      failure = error;
    }
  }
  throw failure;
}

function parseKeyToWrite(pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (error) {
    throw new PkiError('invalid_request', `cannot write credentials: keyPem is not a PEM private key (${describe(error)})`);
  }
}

function encryptKey(key: KeyObject, passphrase: string): string {
  if (passphrase.length === 0) throw new PkiError('invalid_request', `cannot encrypt ${NODE_KEY_FILE}: the passphrase is empty`);
  return key.export({ type: 'pkcs8', format: 'pem', cipher: KEY_CIPHER, passphrase }).toString();
}

/**
 * Writes `contents` to `path` through a temporary file in the same directory and a rename, then
 * syncs the directory so the rename itself survives a crash.
 */
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
  const directory = openSync(dirname(path), 'r');
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
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
