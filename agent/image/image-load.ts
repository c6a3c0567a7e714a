/**
 * `skiff image load`: docker-save archives (manifest.json + layer tars) and OCI image-layout
 * archives (index.json + blobs/sha256/...), plain or gzip-compressed. The archive is streamed to
 * a staging directory on the store's filesystem (never held in memory), every blob is verified
 * against its digest (OCI) or the config's diff ids (docker-save), then moved into the store, and
 * each image is recorded under the names the archive gives it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, statfs } from 'node:fs/promises';
import { join, relative, isAbsolute } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { x as extract } from 'tar';
import type { LocalImageStore } from './image-store.js';
import { LAYER_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, parseImageConfig, parseManifest, selectPlatform, type Descriptor } from './manifest.js';
import { parseReference } from './reference.js';
import { ImageError } from './types.js';
import { formatSize } from '../../common/format.js';

/** Images one archive may hold. */
export const MAX_IMAGES_PER_ARCHIVE = 64;
/** Largest JSON document (manifest.json, index.json, a manifest or config) read from an archive. */
export const MAX_ARCHIVE_JSON_BYTES = 4 * 1024 * 1024;

/** Space an archive may never take from the store's filesystem: this fraction of it stays free. */
export const KEEP_FREE_FRACTION = 0.05;

/** Bytes the unpacked archive may take: the free space of `dir`'s filesystem less KEEP_FREE_FRACTION of its size. */
export async function archiveAllowance(dir: string): Promise<number> {
  const stats = await statfs(dir);
  return Math.max(0, (stats.bavail - stats.blocks * KEEP_FREE_FRACTION) * stats.bsize);
}

/** One image the archive held, as recorded. */
export interface LoadedImage {
  digest: string;
  /** Names recorded for it (`registry/repo:tag`); empty when the archive named it not. */
  references: string[];
}

function invalid(reason: string): ImageError {
  return new ImageError('invalid_archive', `cannot load image archive: ${reason}`);
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function readJson(path: string, what: string): Promise<unknown> {
  const handle = await open(path).catch(() => undefined);
  if (handle === undefined) throw invalid(`${what} is missing`);
  try {
    const { size } = await handle.stat();
    if (size > MAX_ARCHIVE_JSON_BYTES) throw invalid(`${what} is larger than ${MAX_ARCHIVE_JSON_BYTES} bytes`);
    return JSON.parse((await handle.readFile()).toString('utf8'));
  } catch (error) {
    if (error instanceof ImageError) throw error;
    throw invalid(`${what} is not valid JSON`);
  } finally {
    await handle.close();
  }
}

/** A path named inside the archive, resolved within the staging dir (links included) or refused. */
function inside(staging: string, name: string): string {
  const path = join(staging, name);
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    throw invalid(`"${name}" is named but not in the archive`);
  }
  const rel = relative(realpathSync(staging), real);
  if (rel.startsWith('..') || isAbsolute(rel)) throw invalid(`"${name}" points outside the archive`);
  return real;
}

class ArchiveLoader {
  /** Pins this load holds against GC until its records are written. */
  readonly pinned: string[] = [];
  private readonly stagedLayers = new Map<string, { descriptor: Descriptor; path: string }>();

  constructor(
    private readonly store: LocalImageStore,
    private readonly staging: string,
  ) {}

  /** Verifies a staged file against `digest` and moves it into the store's blobs. */
  private async adopt(path: string, digest: string, what: string): Promise<string> {
    const actual = await hashFile(path);
    if (actual !== digest) throw new ImageError('digest_mismatch', `cannot load image archive: ${what} has digest ${actual}, expected ${digest}`);
    this.pin(`blob:${digest}`);
    return this.store.adoptBlob(path, digest);
  }

  private pin(key: string): void {
    this.store.pins.add([key]);
    this.pinned.push(key);
  }

  private async record(names: string[], digest: string, configPath: string, layerBlobs: string[], blobs: string[]): Promise<LoadedImage> {
    const context = `"${names[0] ?? digest}" (archive)`;
    const config = parseImageConfig(await readFile(configPath), context);
    if (config.diffIds.length !== layerBlobs.length) throw invalid(`${context}: config lists ${config.diffIds.length} diff_ids for ${layerBlobs.length} layers`);
    const layers: string[] = [];
    for (const diffId of config.diffIds) this.pin(`layer:${diffId.slice(7)}`);
    for (const [index, blobPath] of layerBlobs.entries()) layers.push(await this.store.ensureLayer(blobPath, config.diffIds[index] ?? '', context));
    const references: string[] = [];
    const base = { digest, config: config.run, layers, blobs, createdMs: Date.now() };
    for (const name of names) {
      const ref = parseReference(name, this.store.defaultRegistry);
      await this.store.writeRecord(ref.normalized, { ...base, reference: ref.normalized });
      const byDigest = `${ref.registry}/${ref.repository}@${digest}`;
      await this.store.writeRecord(byDigest, { ...base, reference: byDigest });
      if (ref.digest === undefined) references.push(ref.normalized);
    }
    if (names.length === 0) await this.store.writeRecord(digest, { ...base, reference: digest });
    return { digest, references };
  }

  /** Hashes a docker-save layer file once (images of one archive share layers) and stores it. */
  private async stageLayer(name: string): Promise<{ descriptor: Descriptor; path: string }> {
    const known = this.stagedLayers.get(name);
    if (known !== undefined) return known;
    const staged = inside(this.staging, name);
    const digest = await hashFile(staged);
    const handle = await open(staged);
    const head = Buffer.alloc(2);
    await handle.read(head, 0, 2, 0);
    const { size } = await handle.stat();
    await handle.close();
    const gzip = head[0] === 0x1f && head[1] === 0x8b;
    const descriptor: Descriptor = { mediaType: gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar', digest, size };
    // The file may be a link to another layer file of the archive (old docker-save): copy it then.
    this.pin(`blob:${digest}`);
    const path = existsSync(join(this.store.blobsDir, digest.slice(7))) ? join(this.store.blobsDir, digest.slice(7)) : await this.store.adoptBlob(staged, digest);
    const layer = { descriptor, path };
    this.stagedLayers.set(name, layer);
    return layer;
  }

  /** docker-save: `manifest.json` = [{ Config, RepoTags, Layers }], layer files named by path. */
  async loadDockerSave(): Promise<LoadedImage[]> {
    const document = await readJson(join(this.staging, 'manifest.json'), 'manifest.json');
    if (!Array.isArray(document)) throw invalid('manifest.json is not an array');
    if (document.length > MAX_IMAGES_PER_ARCHIVE) throw invalid(`manifest.json lists more than ${MAX_IMAGES_PER_ARCHIVE} images`);
    const loaded: LoadedImage[] = [];
    for (const [index, entry] of document.entries()) {
      const { Config: configName, RepoTags: repoTags, Layers: layerNames } = (entry ?? {}) as Record<string, unknown>;
      if (typeof configName !== 'string') throw invalid(`manifest.json[${index}].Config is not a file name`);
      if (!Array.isArray(layerNames) || !layerNames.every((name) => typeof name === 'string')) throw invalid(`manifest.json[${index}].Layers is not a list of file names`);
      const names = Array.isArray(repoTags) ? repoTags.filter((name): name is string => typeof name === 'string') : [];
      const configStaged = inside(this.staging, configName);
      const configDigest = await hashFile(configStaged);
      // The config's file name is its digest in every docker-save format; a mismatch is corruption.
      const named = /([a-f0-9]{64})(?:\.json)?$/.exec(configName)?.[1];
      if (named !== undefined && `sha256:${named}` !== configDigest) throw new ImageError('digest_mismatch', `cannot load image archive: ${configName} has digest ${configDigest}`);
      const configBytes = await readFile(configStaged);
      const configPath = await this.adopt(configStaged, configDigest, configName);
      const layers: Descriptor[] = [];
      const layerBlobs: string[] = [];
      for (const name of layerNames as string[]) {
        const layer = await this.stageLayer(name);
        layers.push(layer.descriptor);
        layerBlobs.push(layer.path);
      }
      // A docker-save archive has no manifest: make the OCI one a registry would hold.
      const manifestBytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MANIFEST_MEDIA_TYPES.ociManifest,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: configBytes.length },
          layers,
        }),
      );
      const digest = `sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`;
      await this.store.storeBytes(digest, manifestBytes);
      loaded.push(await this.record(names, digest, configPath, layerBlobs, [digest, configDigest, ...layers.map((layer) => layer.digest)]));
    }
    return loaded;
  }

  /** OCI image layout: `index.json` names manifests (or indexes) by digest; names in annotations. */
  async loadOciLayout(): Promise<LoadedImage[]> {
    const index = parseManifest(Buffer.from(JSON.stringify(await readJson(join(this.staging, 'index.json'), 'index.json'))), MANIFEST_MEDIA_TYPES.ociIndex, '(archive index.json)');
    if (index.kind !== 'index') throw invalid('index.json is not an image index');
    if (index.manifests.length > MAX_IMAGES_PER_ARCHIVE) throw invalid(`index.json lists more than ${MAX_IMAGES_PER_ARCHIVE} images`);
    const raw = (await readJson(join(this.staging, 'index.json'), 'index.json')) as { manifests: { annotations?: Record<string, unknown> }[] };
    const byDigest = new Map<string, LoadedImage>();
    for (const [position, top] of index.manifests.entries()) {
      const annotations = raw.manifests[position]?.annotations ?? {};
      const name = [annotations['io.containerd.image.name'], annotations['org.opencontainers.image.ref.name']].find(
        (value): value is string => typeof value === 'string' && /[:/]/.test(value),
      );
      const loaded = await this.loadOne(top, name === undefined ? [] : [name]);
      const known = byDigest.get(loaded.digest);
      byDigest.set(loaded.digest, known === undefined ? loaded : { digest: loaded.digest, references: [...known.references, ...loaded.references] });
    }
    return [...byDigest.values()];
  }

  private async blob(descriptor: Descriptor, what: string): Promise<string> {
    const stored = join(this.store.blobsDir, descriptor.digest.slice(7));
    const staged = join(this.staging, 'blobs', 'sha256', descriptor.digest.slice(7));
    if (!existsSync(staged) && existsSync(stored)) {
      this.pin(`blob:${descriptor.digest}`);
      return stored;
    }
    return this.adopt(inside(this.staging, `blobs/sha256/${descriptor.digest.slice(7)}`), descriptor.digest, what);
  }

  private async loadOne(top: Descriptor, names: string[]): Promise<LoadedImage> {
    const context = `"${names[0] ?? top.digest}" (archive)`;
    const blobs = [top.digest];
    let manifestPath = await this.blob(top, `manifest ${top.digest}`);
    let manifest = parseManifest(await readFile(manifestPath), top.mediaType, context);
    if (manifest.kind === 'index') {
      const chosen = selectPlatform(manifest.manifests, this.store.platformWanted, context);
      manifestPath = await this.blob(chosen, `manifest ${chosen.digest}`);
      blobs.push(chosen.digest);
      manifest = parseManifest(await readFile(manifestPath), chosen.mediaType, context);
      if (manifest.kind === 'index') throw invalid(`${context}: index ${chosen.digest} points at another index`);
    }
    const configPath = await this.blob(manifest.config, `config ${manifest.config.digest}`);
    const layerBlobs: string[] = [];
    for (const layer of manifest.layers) {
      if (LAYER_MEDIA_TYPES[layer.mediaType] === undefined) throw invalid(`${context}: layer ${layer.digest} has unsupported media type "${layer.mediaType}"`);
      layerBlobs.push(await this.blob(layer, `layer ${layer.digest}`));
    }
    blobs.push(manifest.config.digest, ...manifest.layers.map((layer) => layer.digest));
    return this.record(names, top.digest, configPath, layerBlobs, blobs);
  }
}

/**
 * Loads every image of an archive into `store`. The archive arrives as a stream of chunks; it is
 * unpacked to a staging directory under the store and removed afterwards, whatever happens.
 */
export async function loadArchive(store: LocalImageStore, archive: AsyncIterable<Uint8Array>, allowance?: number): Promise<LoadedImage[]> {
  const stagingRoot = join(store.layersDir, '..', 'staging');
  await mkdir(stagingRoot, { recursive: true });
  const staging = await mkdtemp(join(stagingRoot, 'load-'));
  try {
    // An archive too large for the disk is refused, not unpacked until the disk is full (the
    // node's other state lives there too): entries past the allowance are not written at all.
    const budget = allowance ?? (await archiveAllowance(stagingRoot));
    let unpacked = 0;
    let overBudget = false;
    try {
      await pipeline(
        Readable.from(archive),
        extract({
          cwd: staging,
          strict: true,
          filter: (_path, entry) => {
            const { type, size } = entry as { type?: string; size?: number };
            if (!['File', 'OldFile', 'Directory', 'SymbolicLink'].includes(type ?? '')) return false;
            unpacked += size ?? 0;
            if (unpacked > budget) overBudget = true;
            return !overBudget;
          },
        }),
      );
    } catch (error) {
      throw invalid(`it is not a tar archive (plain or gzip): ${error instanceof Error ? error.message : String(error)}`);
    }
    if (overBudget) throw invalid(`it unpacks to more than the ${formatSize(budget)} this node can spare (${KEEP_FREE_FRACTION * 100}% of its image disk stays free)`);
    const loader = new ArchiveLoader(store, staging);
    try {
      if (existsSync(join(staging, 'index.json'))) return await loader.loadOciLayout();
      if (existsSync(join(staging, 'manifest.json'))) return await loader.loadDockerSave();
      throw invalid('it holds neither index.json (OCI image layout) nor manifest.json (docker save)');
    } finally {
      store.pins.release(loader.pinned);
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
