/**
 * What is on disk, and taking it away: list images (grouped by manifest digest), remove one name,
 * prune unused images, and collect layers and blobs no record refers to any more.
 *
 * Crash safety of GC: a layer is first renamed out of `layers/<hex>` to `layers/.gc-<hex>-...`
 * (atomic, done synchronously right after checking the pins, so no pull in this process can pick
 * it up in between) and only then deleted; a pull never uses a dot-named directory, and a restart
 * finishes the deletion (`collectGarbage({ startup: true })`). Blobs are single files: unlink is atomic.
 */
import { lstatSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseRecord, type ImageRecord, type LocalImageStore } from './image-store.js';
import { parseReference } from './reference.js';
import { ImageError, type ImageSummary, type ImageRemoval } from './types.js';
import { compareText } from '../../common/compare.js';

const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;
/** Shortest hex prefix accepted as an image id in `image rm`, like Docker's short ids. */
export const MIN_ID_PREFIX_LENGTH = 12;

interface StoredRecord {
  file: string;
  record: ImageRecord;
}

function isTag(reference: string): boolean {
  return !reference.includes('@') && !DIGEST_PATTERN.test(reference);
}

async function readRecords(store: LocalImageStore): Promise<StoredRecord[]> {
  const names = await readdir(store.imagesDir).catch(() => [] as string[]);
  const records: StoredRecord[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const file = join(store.imagesDir, name);
    try {
      const record = parseRecord(await readFile(file, 'utf8'));
      if (record !== undefined) records.push({ file, record });
    } catch {
      // A record being replaced right now, or unreadable: skipped, never deleted from here.
    }
  }
  return records;
}

/** Bytes under a path (files and symlinks by their own size), without following links. */
function treeBytes(path: string): number {
  let total = 0;
  const stack = [path];
  while (stack.length > 0) {
    const current = stack.pop() ?? '';
    let info;
    try {
      info = lstatSync(current);
    } catch {
      continue;
    }
    if (info.isDirectory()) {
      for (const name of readdirSync(current)) stack.push(join(current, name));
    } else {
      total += info.size;
    }
  }
  return total;
}

/** Manifest digests of the images that containers use, one entry per container. */
async function usedDigests(store: LocalImageStore, inUse: readonly string[]): Promise<string[]> {
  const digests: string[] = [];
  for (const reference of inUse) {
    try {
      const parsed = parseReference(reference, store.defaultRegistry);
      const digest = parsed.digest ?? (await store.getLocal(reference))?.digest;
      if (digest !== undefined) digests.push(digest);
    } catch {
      // A reference that does not parse names no image here.
    }
  }
  return digests;
}

/** Every image on this node, one entry per manifest digest, newest first. */
export async function listImages(store: LocalImageStore, inUse: readonly string[]): Promise<ImageSummary[]> {
  const records = await readRecords(store);
  const used = await usedDigests(store, inUse);
  const byDigest = new Map<string, ImageRecord[]>();
  for (const { record } of records) byDigest.set(record.digest, [...(byDigest.get(record.digest) ?? []), record]);
  const layerBytes = new Map<string, number>();
  const summaries: ImageSummary[] = [];
  for (const [digest, group] of byDigest) {
    const tags = group.map((record) => record.reference).filter(isTag);
    const layers = group[0]?.layers ?? [];
    let sizeBytes = 0;
    for (const hex of layers) {
      if (!layerBytes.has(hex)) layerBytes.set(hex, treeBytes(join(store.layersDir, hex)));
      sizeBytes += layerBytes.get(hex) ?? 0;
    }
    summaries.push({
      references: (tags.length > 0 ? tags : group.map((record) => record.reference)).sort(),
      digest,
      sizeBytes,
      createdMs: Math.min(...group.map((record) => record.createdMs ?? 0)),
      containers: used.filter((entry) => entry === digest).length,
    });
  }
  return summaries.sort((a, b) => b.createdMs - a.createdMs || compareText(a.digest, b.digest));
}

function findDigest(records: StoredRecord[], reference: string): string | undefined {
  const wanted = reference.startsWith('sha256:') ? reference : `sha256:${reference}`;
  if (DIGEST_PATTERN.test(wanted)) return records.some((entry) => entry.record.digest === wanted) ? wanted : undefined;
  if (!/^[a-f0-9]+$/.test(reference.replace(/^sha256:/, '')) || reference.replace(/^sha256:/, '').length < MIN_ID_PREFIX_LENGTH) return undefined;
  const matches = new Set(records.map((entry) => entry.record.digest).filter((digest) => digest.startsWith(wanted)));
  if (matches.size > 1) throw new ImageError('invalid_reference', `cannot remove image "${reference}": the id prefix matches ${matches.size} images`);
  return [...matches][0];
}

/**
 * Removes one name of an image (a tag), or a whole image by digest, id prefix or `repo@digest`.
 * An image used by a container on this node is refused unless `force`; forced, its tags go but
 * its digest record stays while a container uses it, so its layers are never collected under it.
 */
export async function removeImage(store: LocalImageStore, reference: string, options: { force: boolean; inUse: readonly string[] }): Promise<ImageRemoval> {
  const records = await readRecords(store);
  let targets: StoredRecord[];
  let digest = findDigest(records, reference);
  if (digest !== undefined) {
    targets = records.filter((entry) => entry.record.digest === digest);
  } else {
    const parsed = parseReference(reference, store.defaultRegistry);
    targets = records.filter((entry) => entry.record.reference === parsed.normalized);
    digest = targets[0]?.record.digest;
  }
  if (digest === undefined || targets.length === 0) throw new ImageError('not_found', `cannot remove image "${reference}": no such image on this node`);
  const containers = (await usedDigests(store, options.inUse)).filter((entry) => entry === digest).length;
  if (containers > 0 && !options.force) {
    throw new ImageError('in_use', `cannot remove image "${reference}": ${containers} container(s) on this node use it (${digest}); stop them or use --force`);
  }
  const remaining = records.filter((entry) => entry.record.digest === digest && !targets.includes(entry));
  const lastTag = !remaining.some((entry) => isTag(entry.record.reference));
  // The last tag takes the image's digest names with it, unless a container still uses it.
  if (lastTag && containers === 0) targets.push(...remaining);
  else if (lastTag) targets = targets.filter((entry) => isTag(entry.record.reference));
  const deleted: string[] = [];
  for (const target of targets) {
    await rm(target.file, { force: true });
    deleted.push(`untagged: ${target.record.reference}`);
  }
  const stillThere = (await readRecords(store)).some((entry) => entry.record.digest === digest);
  if (!stillThere) deleted.push(`deleted: ${digest}`);
  const collected = await collectGarbage(store, options.inUse);
  return { deleted: [...deleted, ...collected.deleted], reclaimedBytes: collected.reclaimedBytes };
}

/** Removes images no container uses: only untagged ones, or with `all` every unused one. */
export async function pruneImages(store: LocalImageStore, options: { all: boolean; inUse: readonly string[] }): Promise<ImageRemoval> {
  const records = await readRecords(store);
  const used = new Set(await usedDigests(store, options.inUse));
  const tagged = new Set(records.filter((entry) => isTag(entry.record.reference)).map((entry) => entry.record.digest));
  const deleted: string[] = [];
  const removedDigests = new Set<string>();
  for (const entry of records) {
    const digest = entry.record.digest;
    if (used.has(digest) || (!options.all && tagged.has(digest))) continue;
    await rm(entry.file, { force: true });
    deleted.push(`untagged: ${entry.record.reference}`);
    removedDigests.add(digest);
  }
  for (const digest of removedDigests) deleted.push(`deleted: ${digest}`);
  const collected = await collectGarbage(store, options.inUse);
  return { deleted: [...deleted, ...collected.deleted], reclaimedBytes: collected.reclaimedBytes };
}

/**
 * Deletes unpacked layers and blobs that no record refers to and no pull in progress pinned. With
 * `startup`, also finishes deletions and temporary files a crash left behind (only safe before any
 * pull of this process started).
 */
export async function collectGarbage(store: LocalImageStore, inUse: readonly string[], options: { startup?: boolean } = {}): Promise<ImageRemoval> {
  const records = (await readRecords(store)).map((entry) => entry.record);
  // Layers of images containers use stay even when a record vanished under them.
  for (const reference of inUse) {
    const local = await store.getLocal(reference).catch(() => undefined);
    if (local !== undefined) records.push({ reference, digest: local.digest, config: local.config, layers: local.layerDirs.map((dir) => dir.slice(store.layersDir.length + 1)), blobs: [] });
  }
  if (options.startup === true) await rm(join(store.layersDir, '..', 'staging'), { recursive: true, force: true });
  const layers = new Set(records.flatMap((record) => record.layers));
  const deleted: string[] = [];
  let reclaimedBytes = 0;
  for (const name of await readdir(store.layersDir).catch(() => [] as string[])) {
    const path = join(store.layersDir, name);
    if (name.startsWith('.gc-') || (options.startup === true && name.startsWith('.tmp-'))) {
      reclaimedBytes += treeBytes(path);
      rmSync(path, { recursive: true, force: true });
      continue;
    }
    if (name.startsWith('.') || layers.has(name) || store.pins.has(`layer:${name}`)) continue;
    const doomed = join(store.layersDir, `.gc-${name}-${process.pid}`);
    renameSync(path, doomed); // synchronous with the pin check above: no pull can slip in between
    reclaimedBytes += treeBytes(doomed);
    await rm(doomed, { recursive: true, force: true });
    deleted.push(`layer sha256:${name}`);
  }
  // Records from before blob lists existed name no blobs: then keep every blob rather than guess.
  if (records.some((record) => record.blobs === undefined)) return { deleted, reclaimedBytes };
  const blobs = new Set(records.flatMap((record) => [record.digest, ...(record.blobs ?? [])]).map((digest) => digest.slice('sha256:'.length)));
  for (const name of await readdir(store.blobsDir).catch(() => [] as string[])) {
    const path = join(store.blobsDir, name);
    const temporary = name.includes('.');
    if (temporary ? options.startup !== true : blobs.has(name) || store.pins.has(`blob:sha256:${name}`)) continue;
    try {
      reclaimedBytes += lstatSync(path).size;
      unlinkSync(path);
      if (!temporary) deleted.push(`blob sha256:${name}`);
    } catch {
      // Gone already.
    }
  }
  return { deleted, reclaimedBytes };
}

/** Disk use (percent of the store's filesystem) above which unused images are removed. */
export const IMAGE_GC_HIGH_PERCENT = 85;
/** Disk use the automatic GC brings the filesystem down to, when unused images allow. */
export const IMAGE_GC_LOW_PERCENT = 80;

/** Used and total bytes of the filesystem holding `path`. */
export type DiskUsage = (path: string) => Promise<{ usedBytes: number; totalBytes: number }>;

/**
 * Like kubelet's image GC: when the store's filesystem is fuller than `highPercent`, removes
 * images no container uses, least recently pulled first, until it is at `lowPercent` or nothing
 * unused is left. Returns what went (empty below the high-water mark).
 */
export async function collectByDiskUsage(
  store: LocalImageStore,
  inUse: readonly string[],
  diskUsage: DiskUsage,
  marks: { highPercent: number; lowPercent: number } = { highPercent: IMAGE_GC_HIGH_PERCENT, lowPercent: IMAGE_GC_LOW_PERCENT },
): Promise<ImageRemoval> {
  const percent = async (): Promise<number> => {
    const { usedBytes, totalBytes } = await diskUsage(store.imagesDir);
    return totalBytes === 0 ? 0 : (usedBytes * 100) / totalBytes;
  };
  const removal: ImageRemoval = { deleted: [], reclaimedBytes: 0 };
  if ((await percent()) <= marks.highPercent) return removal;
  const used = new Set(await usedDigests(store, inUse));
  const candidates = (await listImages(store, inUse)).filter((image) => !used.has(image.digest)).sort((a, b) => a.createdMs - b.createdMs);
  for (const image of candidates) {
    if ((await percent()) <= marks.lowPercent) break;
    const step = await removeImage(store, image.digest, { force: false, inUse });
    removal.deleted.push(...step.deleted);
    removal.reclaimedBytes += step.reclaimedBytes;
  }
  return removal;
}
