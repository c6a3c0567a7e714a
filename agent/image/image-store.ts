/**
 * The image store on one host. Layout under `dataDir`:
 *   blobs/sha256/<hex>     manifests, configs and layer blobs, each verified against its digest
 *   layers/<hex>/          one unpacked layer per diff id, shared by every image that uses it
 *   images/<key>.json      reference -> manifest digest, run config and layer list (for getLocal)
 * Everything lands by rename from a temporary name, so a crash never leaves a half-written blob,
 * layer or record under its final name. Concurrent pulls in this process serialise per digest.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { once } from 'node:events';
import { unpackLayer } from './layer-unpack.js';
import { MANIFEST_MEDIA_TYPES, ociArchitecture, parseImageConfig, parseManifest, selectPlatform, type Descriptor } from './manifest.js';
import { parseReference, type ImageReference } from './reference.js';
import { RegistryClient, type RegistryCredentials } from './registry-client.js';
import { ImageError, type ImageRunConfig, type ImageStore, type ImageStoreOptions, type PulledImage } from './types.js';

/** Layers of one image downloaded and unpacked at the same time. */
export const MAX_PARALLEL_LAYERS = 3;
const ACCEPT = [MANIFEST_MEDIA_TYPES.ociManifest, MANIFEST_MEDIA_TYPES.ociIndex, MANIFEST_MEDIA_TYPES.dockerManifest, MANIFEST_MEDIA_TYPES.dockerList];

/** Options beyond the pinned `ImageStoreOptions`; all optional. */
export interface ImageStoreExtras {
  /** Credentials by registry (`host:port` as written in references), for Basic and token auth. */
  credentials?: Record<string, RegistryCredentials>;
  /** Platform to pick from an index; defaults to linux and this machine's architecture. */
  platform?: { os: string; architecture: string };
}

interface ImageRecord {
  reference: string;
  digest: string;
  config: ImageRunConfig;
  layers: string[];
}

function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

let tempCounter = 0;
/** A temp-file suffix unique within this host: pid plus a per-process counter. */
function tempSuffix(): string {
  tempCounter += 1;
  return `${process.pid}.${tempCounter}.tmp`;
}

function hexOf(digest: string): string {
  return digest.slice('sha256:'.length);
}

function parseRecord(text: string): ImageRecord | undefined {
  const value = JSON.parse(text) as Partial<ImageRecord>;
  const strings = (list: unknown): list is string[] => Array.isArray(list) && list.every((item) => typeof item === 'string');
  const config = value.config;
  if (typeof value.reference !== 'string' || typeof value.digest !== 'string' || !strings(value.layers) || config === undefined) return undefined;
  if (!strings(config.entrypoint) || !strings(config.cmd) || !strings(config.env) || typeof config.workingDir !== 'string' || typeof config.user !== 'string') return undefined;
  return { reference: value.reference, digest: value.digest, config, layers: value.layers };
}

class LocalImageStore implements ImageStore {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly blobsDir: string;
  private readonly layersDir: string;
  private readonly imagesDir: string;
  private readonly platform: { os: string; architecture: string };

  constructor(private readonly options: ImageStoreOptions & ImageStoreExtras) {
    this.blobsDir = join(options.dataDir, 'blobs', 'sha256');
    this.layersDir = join(options.dataDir, 'layers');
    this.imagesDir = join(options.dataDir, 'images');
    this.platform = options.platform ?? { os: 'linux', architecture: ociArchitecture(process.arch) };
  }

  async getLocal(reference: string): Promise<PulledImage | undefined> {
    const ref = parseReference(reference, this.options.defaultRegistry);
    let record: ImageRecord | undefined;
    try {
      record = parseRecord(await readFile(this.recordPath(ref.normalized), 'utf8'));
    } catch {
      return undefined;
    }
    if (record === undefined) return undefined;
    const layerDirs = record.layers.map((hex) => join(this.layersDir, hex));
    if (!layerDirs.every((dir) => existsSync(dir))) return undefined;
    return { reference: ref.normalized, digest: record.digest, config: record.config, layerDirs };
  }

  async pull(reference: string): Promise<PulledImage> {
    const ref = parseReference(reference, this.options.defaultRegistry);
    if (ref.digest !== undefined) {
      const local = await this.getLocal(reference);
      if (local !== undefined) return local;
    }
    const context = `"${reference}"`;
    const credentials = this.options.credentials?.[ref.registry];
    const client = new RegistryClient({
      registry: ref.registry,
      repository: ref.repository,
      insecure: this.options.insecureRegistries.includes(ref.registry),
      context,
      ...(credentials === undefined ? {} : { credentials }),
    });
    const top = await client.getManifest(ref.digest ?? ref.tag ?? 'latest', ACCEPT);
    const digest = `sha256:${sha256Hex(top.bytes)}`;
    if (ref.digest !== undefined && digest !== ref.digest) {
      throw new ImageError('digest_mismatch', `cannot pull image ${context}: registry ${ref.registry} sent a manifest with digest ${digest}`);
    }
    await this.storeBytes(digest, top.bytes);
    let manifest = parseManifest(top.bytes, top.contentType, context);
    if (manifest.kind === 'index') {
      const chosen = selectPlatform(manifest.manifests, this.platform, context);
      const sub = await client.getManifest(chosen.digest, ACCEPT);
      const subDigest = `sha256:${sha256Hex(sub.bytes)}`;
      if (subDigest !== chosen.digest) {
        throw new ImageError('digest_mismatch', `cannot pull image ${context}: manifest ${chosen.digest} from registry ${ref.registry} has digest ${subDigest}`);
      }
      await this.storeBytes(subDigest, sub.bytes);
      manifest = parseManifest(sub.bytes, sub.contentType, context);
      if (manifest.kind === 'index') throw new ImageError('unsupported_media_type', `cannot pull image ${context}: index ${chosen.digest} points at another index`);
    }
    const configPath = await this.ensureBlob(client, manifest.config, context, ref);
    const config = parseImageConfig(await readFile(configPath), context);
    if (config.diffIds.length !== manifest.layers.length) {
      throw new ImageError(
        'unsupported_media_type',
        `cannot pull image ${context}: config lists ${config.diffIds.length} diff_ids for ${manifest.layers.length} layers`,
      );
    }
    const layers = await this.ensureLayers(client, manifest.layers, config.diffIds, context, ref);
    const record: ImageRecord = { reference: ref.normalized, digest, config: config.run, layers };
    await this.writeRecord(ref.normalized, record);
    await this.writeRecord(`${ref.registry}/${ref.repository}@${digest}`, { ...record, reference: `${ref.registry}/${ref.repository}@${digest}` });
    return { reference: ref.normalized, digest, config: config.run, layerDirs: layers.map((hex) => join(this.layersDir, hex)) };
  }

  private async ensureLayers(client: RegistryClient, layers: Descriptor[], diffIds: string[], context: string, ref: ImageReference): Promise<string[]> {
    const result: string[] = new Array<string>(layers.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let index = next++; index < layers.length; index = next++) {
        const layer = layers[index];
        const diffId = diffIds[index];
        if (layer === undefined || diffId === undefined) throw new Error(`layer ${index} missing`); // lengths checked by caller
        const blobPath = await this.ensureBlob(client, layer, context, ref);
        result[index] = await this.ensureLayer(blobPath, diffId, context);
      }
    };
    await Promise.all(Array.from({ length: Math.min(MAX_PARALLEL_LAYERS, layers.length) }, worker));
    return result;
  }

  /** Runs `task` after every earlier task with the same key (in this process) has settled. */
  private withLock<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return result;
  }

  private async storeBytes(digest: string, bytes: Buffer): Promise<void> {
    const path = join(this.blobsDir, hexOf(digest));
    if (existsSync(path)) return;
    await mkdir(this.blobsDir, { recursive: true });
    const temp = `${path}.${tempSuffix()}`;
    await writeFile(temp, bytes);
    await rename(temp, path);
  }

  /** Downloads a blob once (verifying size and digest) and returns its path. */
  private ensureBlob(client: RegistryClient, descriptor: Descriptor, context: string, ref: ImageReference): Promise<string> {
    const path = join(this.blobsDir, hexOf(descriptor.digest));
    return this.withLock(`blob:${descriptor.digest}`, async () => {
      const existing = await stat(path).catch(() => undefined);
      if (existing?.size === descriptor.size) return path;
      await mkdir(this.blobsDir, { recursive: true });
      const response = await client.getBlob(descriptor.digest);
      const temp = `${path}.${tempSuffix()}`;
      const hash = createHash('sha256');
      const output = createWriteStream(temp);
      let size = 0;
      try {
        if (response.body === null) throw new Error('empty body');
        for await (const chunk of response.body) {
          size += chunk.length;
          if (size > descriptor.size) break;
          hash.update(chunk);
          if (!output.write(chunk)) await once(output, 'drain');
        }
        output.end();
        await once(output, 'close');
      } catch (error) {
        output.destroy();
        await rm(temp, { force: true });
        throw new ImageError('registry_unreachable', `cannot pull image ${context}: download of blob ${descriptor.digest} from registry ${ref.registry} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      const actual = `sha256:${hash.digest('hex')}`;
      if (size !== descriptor.size || actual !== descriptor.digest) {
        await rm(temp, { force: true });
        const what = size !== descriptor.size ? `${size > descriptor.size ? 'more than' : 'only'} ${Math.min(size, descriptor.size + 1)} bytes, expected ${descriptor.size}` : `digest ${actual}`;
        throw new ImageError('digest_mismatch', `cannot pull image ${context}: blob ${descriptor.digest} from registry ${ref.registry} has ${what}`);
      }
      await rename(temp, path);
      return path;
    });
  }

  /** Unpacks a layer once into layers/<diff id hex> and returns that hex. */
  private ensureLayer(blobPath: string, diffId: string, context: string): Promise<string> {
    const hex = hexOf(diffId);
    const finalDir = join(this.layersDir, hex);
    return this.withLock(`layer:${diffId}`, async () => {
      if (existsSync(finalDir)) return hex;
      await mkdir(this.layersDir, { recursive: true });
      const temp = await mkdtemp(join(this.layersDir, `.tmp-${hex.slice(0, 12)}-`));
      try {
        await unpackLayer(blobPath, temp, context, diffId);
        await rename(temp, finalDir);
      } catch (error) {
        await rm(temp, { recursive: true, force: true });
        const code = (error as { code?: unknown }).code;
        // Another process won the race and its layer is complete (rename is atomic): use it.
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(finalDir)) return hex;
        throw error;
      }
      return hex;
    });
  }

  private recordPath(normalized: string): string {
    return join(this.imagesDir, `${sha256Hex(normalized)}.json`);
  }

  private async writeRecord(normalized: string, record: ImageRecord): Promise<void> {
    await mkdir(this.imagesDir, { recursive: true });
    const path = this.recordPath(normalized);
    const temp = `${path}.${tempSuffix()}`;
    await writeFile(temp, JSON.stringify(record));
    await rename(temp, path);
  }
}

/**
 * Creates the store for `options.dataDir` (created on first pull). Cheap: no I/O until used, and
 * any number of instances on the same dataDir see the same images.
 */
export function createImageStore(options: ImageStoreOptions & ImageStoreExtras): ImageStore {
  if (!isAbsolute(options.dataDir)) throw new Error(`cannot create image store: dataDir "${options.dataDir}" is not absolute`);
  parseReference('probe', options.defaultRegistry); // rejects an unusable defaultRegistry up front
  return new LocalImageStore(options);
}
