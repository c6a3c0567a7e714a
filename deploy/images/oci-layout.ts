/**
 * Writing an OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) from
 * in-memory blobs. Several tags may share one layout: writing a tag replaces only that tag's entry.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Media types this builder writes. */
export const MEDIA_TYPE = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** The annotation that names a tag in an OCI layout's index. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

/** `sha256:<hex>` of the bytes. */
export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Writes a blob (atomically, via a temp file) and returns its descriptor. */
export async function writeBlob(layoutDir: string, mediaType: string, bytes: Buffer): Promise<Descriptor> {
  const digest = sha256Digest(bytes);
  const dir = join(layoutDir, 'blobs', 'sha256');
  await mkdir(dir, { recursive: true });
  const hex = digest.slice('sha256:'.length);
  const temp = join(dir, `.${hex}.${process.pid}.tmp`);
  await writeFile(temp, bytes);
  await rename(temp, join(dir, hex));
  return { mediaType, digest, size: bytes.length };
}

interface IndexFile {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
}

async function readIndex(layoutDir: string): Promise<IndexFile> {
  let text: string;
  try {
    text = await readFile(join(layoutDir, 'index.json'), 'utf8');
  } catch {
    return { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [] };
  }
  const parsed = JSON.parse(text) as { manifests?: unknown };
  if (!Array.isArray(parsed.manifests)) throw new Error(`cannot read ${layoutDir}/index.json: field manifests is not an array`);
  return { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: parsed.manifests as Descriptor[] };
}

/**
 * Points `tag` at `manifest` in the layout's index.json (creating the layout if needed), keeping
 * other tags. Entries are sorted by tag so the file is deterministic.
 */
export async function tagManifest(layoutDir: string, tag: string, manifest: Descriptor): Promise<void> {
  await mkdir(layoutDir, { recursive: true });
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = await readIndex(layoutDir);
  const others = index.manifests.filter((entry) => entry.annotations?.[REF_NAME_ANNOTATION] !== tag);
  const entry: Descriptor = { ...manifest, annotations: { [REF_NAME_ANNOTATION]: tag } };
  const manifests = [...others, entry].sort((a, b) =>
    (a.annotations?.[REF_NAME_ANNOTATION] ?? '').localeCompare(b.annotations?.[REF_NAME_ANNOTATION] ?? ''),
  );
  const temp = join(layoutDir, `.index.json.${process.pid}.tmp`);
  await writeFile(temp, JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests }, null, 2));
  await rename(temp, join(layoutDir, 'index.json'));
}
