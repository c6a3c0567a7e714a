/**
 * Registry credentials from a Docker-style config file (`skiffd --registry-auth-file`), the same
 * shape as ~/.docker/config.json: `{"auths": {"HOST:PORT": {"auth": base64("user:password")}}}`
 * or `{"username": ..., "password": ...}` per registry. Read once at start, validated here.
 */
import { readFile } from 'node:fs/promises';
import type { RegistryCredentials } from './registry-client.js';

/** Largest auth file read. */
export const MAX_AUTH_FILE_BYTES = 1024 * 1024;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses the file's text; throws naming the registry and field that is wrong. */
export function parseRegistryAuth(text: string, source: string): Record<string, RegistryCredentials> {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new Error(`cannot read registry auth file ${source}: it is not valid JSON`);
  }
  if (!isRecord(document) || !isRecord(document.auths)) throw new Error(`cannot read registry auth file ${source}: it has no "auths" object`);
  const result: Record<string, RegistryCredentials> = {};
  for (const [registry, entry] of Object.entries(document.auths)) {
    const fail = (reason: string): never => {
      throw new Error(`cannot read registry auth file ${source}: auths["${registry}"] ${reason}`);
    };
    if (!isRecord(entry)) fail('is not an object');
    const { auth, username, password } = entry as Record<string, unknown>;
    if (typeof auth === 'string' && auth !== '') {
      const decoded = Buffer.from(auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0) fail('.auth is not base64 of "user:password"');
      result[registry] = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    } else if (typeof username === 'string' && username !== '' && typeof password === 'string') {
      result[registry] = { username, password };
    } else {
      fail('has neither "auth" nor "username" and "password"');
    }
  }
  return result;
}

export async function readRegistryAuthFile(path: string): Promise<Record<string, RegistryCredentials>> {
  const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    throw new Error(`cannot read registry auth file ${path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  if (bytes.length > MAX_AUTH_FILE_BYTES) throw new Error(`cannot read registry auth file ${path}: it is larger than ${MAX_AUTH_FILE_BYTES} bytes`);
  return parseRegistryAuth(bytes.toString('utf8'), path);
}
