// Join tokens: `SKF-1-<CA digest>-<secret>`. The digest pins the cluster CA for a joining node
// (it refuses a manager that presents another CA); the secret says which role it may join as.
import { createHash, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import { PkiError } from './errors.js';

export const JOIN_TOKEN_PREFIX = 'SKF';
export const JOIN_TOKEN_VERSION = '1';
/** SHA-256 in base 36 is at most 50 characters; digests are zero-padded to exactly that. */
export const CA_DIGEST_LENGTH = 50;
/** 128 random bits in base 36. */
export const JOIN_SECRET_LENGTH = 25;

export interface JoinToken {
  caDigest: string;
  secret: string;
}

/** The digest of a CA certificate (the first one of a PEM bundle), as join tokens carry it. */
export function caDigest(caCertPem: string): string {
  let der: Buffer;
  try {
    der = new X509Certificate(caCertPem).raw;
  } catch {
    throw new PkiError('invalid_request', 'cannot compute CA digest: not a PEM certificate');
  }
  return digestOfDer(der);
}

/** The digest of a DER certificate. */
export function digestOfDer(der: Uint8Array): string {
  const value = BigInt(`0x${createHash('sha256').update(der).digest('hex')}`);
  return value.toString(36).padStart(CA_DIGEST_LENGTH, '0');
}

/** A new token for the CA with digest `digest`. */
export function newJoinToken(digest: string): string {
  const secret = BigInt(`0x${randomBytes(16).toString('hex')}`).toString(36).padStart(JOIN_SECRET_LENGTH, '0');
  return `${JOIN_TOKEN_PREFIX}-${JOIN_TOKEN_VERSION}-${digest}-${secret}`;
}

/** Splits a token, with an error that says what is wrong with it (never echoing the secret). */
export function parseJoinToken(token: string): JoinToken {
  const parts = token.trim().split('-');
  if (parts.length !== 4 || parts[0] !== JOIN_TOKEN_PREFIX) {
    throw new PkiError('invalid_request', `cannot use join token: expected ${JOIN_TOKEN_PREFIX}-${JOIN_TOKEN_VERSION}-<CA digest>-<secret>`);
  }
  const [, version, digest = '', secret = ''] = parts;
  if (version !== JOIN_TOKEN_VERSION) throw new PkiError('invalid_request', `cannot use join token: version ${version ?? ''} is not supported (expected ${JOIN_TOKEN_VERSION})`);
  if (!new RegExp(`^[0-9a-z]{${CA_DIGEST_LENGTH}}$`).test(digest)) throw new PkiError('invalid_request', `cannot use join token: the CA digest must be ${CA_DIGEST_LENGTH} characters of [0-9a-z]`);
  if (!new RegExp(`^[0-9a-z]{${JOIN_SECRET_LENGTH}}$`).test(secret)) throw new PkiError('invalid_request', `cannot use join token: the secret must be ${JOIN_SECRET_LENGTH} characters of [0-9a-z]`);
  return { caDigest: digest, secret };
}

/** Compares two tokens in constant time (for equal lengths). */
export function joinTokensEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
