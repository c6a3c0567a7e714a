/**
 * Tag -> digest resolution, as managers do at service create and update so that every replica
 * runs the same bits: `demo/web:v1` becomes `demo/web:v1@sha256:<manifest or index digest>`. For a
 * multi-platform image the index digest is kept, so each node still picks its own platform.
 * Like Docker, a registry that cannot be asked leaves the tag as it is (the caller warns).
 */
import { createHash } from 'node:crypto';
import { MANIFEST_MEDIA_TYPES } from './manifest.js';
import { parseReference } from './reference.js';
import { RegistryClient, type RegistryCredentials } from './registry-client.js';

/** Whole time a resolution may take: service create waits for it. */
export const RESOLVE_DEADLINE_MS = 3_000;
/** Attempts per registry request while resolving (pulls on the nodes retry more). */
export const RESOLVE_ATTEMPTS = 2;

export interface TagResolverOptions {
  defaultRegistry: string;
  insecureRegistries: string[];
  credentials?: Record<string, RegistryCredentials>;
  deadlineMs?: number;
}

export type TagResolution = { kind: 'pinned'; image: string; digest: string } | { kind: 'unchanged'; image: string; reason: string };

const ACCEPT = [MANIFEST_MEDIA_TYPES.ociIndex, MANIFEST_MEDIA_TYPES.dockerList, MANIFEST_MEDIA_TYPES.ociManifest, MANIFEST_MEDIA_TYPES.dockerManifest];

/** Asks the registry for the digest `image`'s tag points at now. Never throws. */
export async function resolveImageTag(image: string, options: TagResolverOptions): Promise<TagResolution> {
  let ref;
  try {
    ref = parseReference(image, options.defaultRegistry);
  } catch (error) {
    return { kind: 'unchanged', image, reason: error instanceof Error ? error.message : String(error) };
  }
  if (ref.digest !== undefined) return { kind: 'unchanged', image, reason: 'the reference has a digest already' };
  const deadlineMs = options.deadlineMs ?? RESOLVE_DEADLINE_MS;
  const credentials = options.credentials?.[ref.registry];
  const client = new RegistryClient({
    registry: ref.registry,
    repository: ref.repository,
    insecure: options.insecureRegistries.includes(ref.registry),
    context: `"${image}"`,
    maxAttempts: RESOLVE_ATTEMPTS,
    manifestTimeoutMs: deadlineMs,
    ...(credentials === undefined ? {} : { credentials }),
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<TagResolution>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'unchanged', image, reason: `registry ${ref.registry} did not answer within ${deadlineMs} ms` }), deadlineMs);
  });
  const asked = client.getManifest(ref.tag ?? 'latest', ACCEPT).then(
    ({ bytes }): TagResolution => {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      return { kind: 'pinned', image: `${image}@${digest}`, digest };
    },
    (error: unknown): TagResolution => ({ kind: 'unchanged', image, reason: error instanceof Error ? error.message : String(error) }),
  );
  try {
    return await Promise.race([asked, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
