/**
 * A manager's data-encryption key (DEK): 32 random bytes that seal its Raft WAL and snapshots,
 * kept in `<dir>/dek.json` wrapped (AES-256-GCM) by a key-encryption key (KEK).
 *
 * - Autolock off: the KEK is random and stored in the same file. This only defeats a copy of the
 *   Raft directory made without the key file (Docker swarm gives the same guarantee).
 * - Autolock on: the KEK is never on disk. It is derived from the operator's unlock key
 *   `SKFKEY-1-<base64url of 32 random bytes>` with HKDF-SHA256 (salt: 32 random bytes stored in
 *   the file; info: "skiff-dek kek 1"). The unlock key already carries 256 random bits, so a slow
 *   password KDF such as scrypt would add unlock latency and no strength; HKDF only separates
 *   this use of the key from any other.
 *
 * Only this module reads or writes the file. The DEK never changes once created: rewrapping
 * (turning autolock on or off, rotating the unlock key) replaces the file atomically and leaves
 * every WAL record readable.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../pki/credentials-store.js';

/** The file inside a keys directory. */
export const DATA_KEY_FILE = 'dek.json';
/** The version line of the file; bumped on any incompatible change. */
export const DATA_KEY_FORMAT = 'skiff-dek 1';
export const DATA_KEY_BYTES = 32;
const UNLOCK_KEY_PREFIX = 'SKFKEY-1-';
const UNLOCK_KEY_SECRET_BYTES = 32;
const UNLOCK_KEY_SECRET = /^[A-Za-z0-9_-]{43}$/; // base64url of 32 bytes, no padding
const KDF = 'hkdf-sha256';
const KDF_INFO = 'skiff-dek kek 1';
const SALT_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const FILE_MODE = 0o600;
const DIRECTORY_MODE = 0o700;

export type OpenedDataKey = { status: 'unlocked'; dek: Buffer; autolock: boolean } | { status: 'locked' };

/** The unlock key does not unwrap the data key: it is not this cluster's current unlock key. */
export class WrongUnlockKeyError extends Error {
  constructor(readonly file: string) {
    super(`cannot unlock the data key in ${file}: the unlock key is wrong (it is not the current unlock key of this cluster)`);
    this.name = 'WrongUnlockKeyError';
  }
}

/** A string that is not an unlock key at all (mistyped, truncated, another kind of token). */
export class MalformedUnlockKeyError extends Error {
  constructor(reason: string) {
    super(`cannot use unlock key: ${reason}`);
    this.name = 'MalformedUnlockKeyError';
  }
}

/** The key file cannot be read or is not one this version understands. */
export class DataKeyFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`cannot read data key: ${file} ${reason}`);
    this.name = 'DataKeyFileError';
  }
}

/** A fresh unlock key, `SKFKEY-1-` and 43 base64url characters (32 random bytes). */
export function newUnlockKey(): string {
  return `${UNLOCK_KEY_PREFIX}${randomBytes(UNLOCK_KEY_SECRET_BYTES).toString('base64url')}`;
}

/** Throws a MalformedUnlockKeyError naming the problem unless `key` has the shape of an unlock key. */
export function checkUnlockKey(key: string): void {
  unlockKeySecret(key);
}

function unlockKeySecret(key: string): Buffer {
  // Messages never quote the key: it is a secret, and error texts end up in logs.
  if (!key.startsWith(UNLOCK_KEY_PREFIX)) throw new MalformedUnlockKeyError(`it does not start with "${UNLOCK_KEY_PREFIX}"`);
  const encoded = key.slice(UNLOCK_KEY_PREFIX.length);
  if (encoded.length !== 43) throw new MalformedUnlockKeyError(`it has ${encoded.length} characters after "${UNLOCK_KEY_PREFIX}", not 43`);
  if (!UNLOCK_KEY_SECRET.test(encoded)) throw new MalformedUnlockKeyError(`it has characters other than base64url (A-Z a-z 0-9 - _) after "${UNLOCK_KEY_PREFIX}"`);
  const secret = Buffer.from(encoded, 'base64url');
  if (secret.toString('base64url') !== encoded) throw new MalformedUnlockKeyError('its last character is not a valid base64url ending for 32 bytes');
  return secret;
}

type DataKeyFile =
  | { format: typeof DATA_KEY_FORMAT; autolock: false; kek: string; wrappedDek: string }
  | { format: typeof DATA_KEY_FORMAT; autolock: true; kdf: typeof KDF; salt: string; wrappedDek: string };

/**
 * Opens the data key in `dir`, creating the file with a fresh DEK (autolock off) when there is
 * none. An autolocked file opened without `unlockKey` is 'locked'; with the wrong key it throws
 * WrongUnlockKeyError. With autolock off the KEK is on disk and `unlockKey` is not needed (if
 * given it must still be well formed).
 */
export async function openDataKey(dir: string, unlockKey?: string): Promise<OpenedDataKey> {
  const unlockSecret = unlockKey === undefined ? undefined : unlockKeySecret(unlockKey);
  const path = join(dir, DATA_KEY_FILE);
  const file = await readDataKeyFile(path);
  if (file === undefined) {
    const dek = randomBytes(DATA_KEY_BYTES);
    await wrapDataKey(dir, dek, undefined);
    return { status: 'unlocked', dek, autolock: false };
  }
  if (!file.autolock) {
    const dek = unwrap(Buffer.from(file.kek, 'base64'), file);
    if (dek === undefined) throw new DataKeyFileError(path, 'holds a data key that does not unwrap with the key-encryption key beside it (damaged or tampered)');
    return { status: 'unlocked', dek, autolock: false };
  }
  if (unlockSecret === undefined) return { status: 'locked' };
  const dek = unwrap(deriveKek(unlockSecret, Buffer.from(file.salt, 'base64')), file);
  if (dek === undefined) throw new WrongUnlockKeyError(path);
  return { status: 'unlocked', dek, autolock: true };
}

/**
 * Rewraps `dek` in `dir`, replacing the file atomically: with `unlockKey` undefined the KEK is
 * random and stored in the file (autolock off); with a key the KEK is derived from it and not
 * stored (autolock on). Callers pass the DEK they opened: a different one would orphan the WAL.
 */
export async function wrapDataKey(dir: string, dek: Buffer, unlockKey: string | undefined): Promise<void> {
  if (dek.length !== DATA_KEY_BYTES) throw new Error(`cannot wrap data key: it is ${dek.length} bytes, not ${DATA_KEY_BYTES}`);
  let file: DataKeyFile;
  if (unlockKey === undefined) {
    const kek = randomBytes(DATA_KEY_BYTES);
    file = { format: DATA_KEY_FORMAT, autolock: false, kek: kek.toString('base64'), wrappedDek: wrap(kek, dek, false) };
  } else {
    const salt = randomBytes(SALT_BYTES);
    const wrappedDek = wrap(deriveKek(unlockKeySecret(unlockKey), salt), dek, true);
    file = { format: DATA_KEY_FORMAT, autolock: true, kdf: KDF, salt: salt.toString('base64'), wrappedDek };
  }
  await mkdir(dir, { recursive: true, mode: DIRECTORY_MODE });
  await writeFileAtomic(join(dir, DATA_KEY_FILE), `${JSON.stringify(file, undefined, 2)}\n`, FILE_MODE);
}

function deriveKek(unlockSecret: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', unlockSecret, salt, KDF_INFO, DATA_KEY_BYTES));
}

/** The AAD binds the wrapped key to the file format and its autolock mode. */
const wrapAad = (autolock: boolean): Buffer => Buffer.from(`${DATA_KEY_FORMAT} autolock=${String(autolock)}`);

/** `nonce | ciphertext | tag`, base64. */
function wrap(kek: Buffer, dek: Buffer, autolock: boolean): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(wrapAad(autolock));
  return Buffer.concat([nonce, cipher.update(dek), cipher.final(), cipher.getAuthTag()]).toString('base64');
}

function unwrap(kek: Buffer, file: DataKeyFile): Buffer | undefined {
  const sealed = Buffer.from(file.wrappedDek, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', kek, sealed.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(wrapAad(file.autolock));
  decipher.setAuthTag(sealed.subarray(NONCE_BYTES + DATA_KEY_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES, NONCE_BYTES + DATA_KEY_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** Reads and validates the file at the edge; undefined when it does not exist. */
async function readDataKeyFile(path: string): Promise<DataKeyFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined;
    throw new DataKeyFileError(path, `cannot be read (${error instanceof Error ? error.message : String(error)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DataKeyFileError(path, `is not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  return parseDataKeyFile(path, value);
}

function parseDataKeyFile(path: string, value: unknown): DataKeyFile {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DataKeyFileError(path, 'is not a JSON object');
  const fields = value as Record<string, unknown>;
  if (fields['format'] !== DATA_KEY_FORMAT) throw new DataKeyFileError(path, `has format ${JSON.stringify(fields['format'])}, not "${DATA_KEY_FORMAT}"`);
  const wrappedDek = base64Field(path, fields, 'wrappedDek', NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES);
  if (fields['autolock'] === false) {
    return { format: DATA_KEY_FORMAT, autolock: false, kek: base64Field(path, fields, 'kek', DATA_KEY_BYTES), wrappedDek };
  }
  if (fields['autolock'] === true) {
    if (fields['kdf'] !== KDF) throw new DataKeyFileError(path, `has kdf ${JSON.stringify(fields['kdf'])}, not "${KDF}"`);
    return { format: DATA_KEY_FORMAT, autolock: true, kdf: KDF, salt: base64Field(path, fields, 'salt', SALT_BYTES), wrappedDek };
  }
  throw new DataKeyFileError(path, 'has no boolean "autolock"');
}

function base64Field(path: string, fields: Record<string, unknown>, name: string, bytes: number): string {
  const value = fields[name];
  const valid = typeof value === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(value) && Buffer.from(value, 'base64').length === bytes;
  if (!valid) throw new DataKeyFileError(path, `has no valid "${name}" (base64 of ${bytes} bytes)`);
  return value;
}

