// Reading a Skiff identity out of a certificate, with Node's native X.509 parser. Kept apart
// from the CA code so that every RPC's identity check, and the CLI's start-up, never load the
// (slow to import) certificate-building library.
import { X509Certificate } from 'node:crypto';

/** The CN of every cluster root CA. */
export const ROOT_CA_COMMON_NAME = 'skiff-root-ca';
/** The DNS name every manager certificate carries; clients verify managers against it. */
export const MANAGER_TLS_NAME = 'skiff-manager';

export type NodeRole = 'manager' | 'worker' | 'admin';
export const NODE_ROLES: readonly NodeRole[] = ['manager', 'worker', 'admin'];

/** The identity a Skiff certificate asserts. */
export interface CertificateIdentity {
  /** CN */
  nodeId: string;
  /** OU */
  role: NodeRole;
  /** O */
  clusterId: string;
}

/** Narrows a string to a NodeRole. */
export function isNodeRole(value: string | undefined): value is NodeRole {
  return value !== undefined && (NODE_ROLES as readonly string[]).includes(value);
}

/**
 * The subject's fields. Node prints one `KEY=value` per line; Skiff issues names from a plain
 * alphabet (see checkNameComponent), so a value never holds a newline or an escaped character.
 */
function subjectFields(certificate: string | Uint8Array): Map<string, string[]> | undefined {
  let subject: string;
  try {
    subject = new X509Certificate(typeof certificate === 'string' ? certificate : Buffer.from(certificate)).subject;
  } catch {
    return undefined;
  }
  const fields = new Map<string, string[]>();
  for (const line of subject.split('\n')) {
    const separator = line.indexOf('=');
    if (separator <= 0) continue;
    const key = line.slice(0, separator);
    fields.set(key, [...(fields.get(key) ?? []), line.slice(separator + 1)]);
  }
  return fields;
}

function single(fields: Map<string, string[]>, key: string): string | undefined {
  const values = fields.get(key) ?? [];
  return values.length === 1 ? values[0] : undefined;
}

/**
 * Reads the Skiff identity (CN, OU, O) out of a DER or PEM certificate. Undefined when the
 * certificate does not carry exactly one of each or the OU is not a known role.
 */
export function certificateIdentity(certificate: string | Uint8Array): CertificateIdentity | undefined {
  const fields = subjectFields(certificate);
  if (fields === undefined) return undefined;
  const nodeId = single(fields, 'CN');
  const role = single(fields, 'OU');
  const clusterId = single(fields, 'O');
  if (nodeId === undefined || clusterId === undefined || !isNodeRole(role)) return undefined;
  return { nodeId, role, clusterId };
}

/** The cluster id (O) of a Skiff root CA certificate, or undefined when it is not one. */
export function certificateIdentityOfCa(certPem: string): string | undefined {
  const fields = subjectFields(certPem);
  if (fields === undefined || single(fields, 'CN') !== ROOT_CA_COMMON_NAME) return undefined;
  return single(fields, 'O');
}
