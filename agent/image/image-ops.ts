/**
 * The agent's answer to image requests from managers (`skiff image ls|pull|rm|prune|load` on this
 * node): one function over the wire types, so the node-request channel only has to carry messages.
 */
import type { ImageRequest, ImageResponse } from '../../proto/skiff/v1/attach.js';
import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../../common/log.js';
import { collectByDiskUsage, collectGarbage, listImages, pruneImages, removeImage, type DiskUsage } from './image-catalog.js';
import { loadArchive } from './image-load.js';
import type { LocalImageStore } from './image-store.js';
import { ImageError } from './types.js';

export interface ImageOpsDeps {
  store: LocalImageStore;
  /** Image references of the containers on this node (one entry per container, running or not yet removed). */
  imagesInUse: () => Promise<string[]>;
}

export type ImageOps = (request: ImageRequest, archive: AsyncIterable<Uint8Array> | undefined) => Promise<ImageResponse>;

/**
 * Creates the handler. Errors are `ImageError`s whose message says what could not be done and why
 * (e.g. `cannot remove image "x": 2 container(s) on this node use it ...`); the caller sends the
 * message back as the node's error.
 */
export function createImageOps(deps: ImageOpsDeps): ImageOps {
  const { store } = deps;
  const list = async (): Promise<ImageResponse['images']> => listImages(store, await deps.imagesInUse());
  const only = async (digests: string[]): Promise<ImageResponse['images']> => (await list()).filter((image) => digests.includes(image.digest));
  return async (request, archive) => {
    const op = request.op;
    switch (op?.$case) {
      case 'list':
        return { images: await list(), deleted: [], reclaimedBytes: 0 };
      case 'pull': {
        const pulled = await store.pull(op.value.reference);
        return { images: await only([pulled.digest]), deleted: [], reclaimedBytes: 0 };
      }
      case 'remove': {
        const removal = await removeImage(store, op.value.reference, { force: op.value.force, inUse: await deps.imagesInUse() });
        return { images: [], ...removal };
      }
      case 'prune': {
        const removal = await pruneImages(store, { all: op.value.all, inUse: await deps.imagesInUse() });
        return { images: [], ...removal };
      }
      case 'load': {
        if (archive === undefined) throw new ImageError('invalid_archive', 'cannot load image archive: no archive data was sent');
        const loaded = await loadArchive(store, archive);
        return { images: await only(loaded.map((image) => image.digest)), deleted: [], reclaimedBytes: 0 };
      }
      case undefined:
        throw new ImageError('invalid_reference', 'cannot run image command: the request names no operation');
      default: {
        const unknown: never = op;
        throw new Error(`unknown image op ${JSON.stringify(unknown)}`);
      }
    }
  };
}

/** Startup GC: finishes what a crash interrupted and drops what nothing refers to. */
export async function collectImageGarbageAtStartup(deps: ImageOpsDeps): Promise<void> {
  await collectGarbage(deps.store, await deps.imagesInUse(), { startup: true });
}

/** How often the agent checks the image store's disk use against the high-water mark. */
export const IMAGE_GC_PERIOD_MS = 5 * 60_000;

const statfsUsage: DiskUsage = async (path) => {
  // The store's directories appear with the first pull: measure the nearest one that exists.
  let target = path;
  while (!existsSync(target) && dirname(target) !== target) target = dirname(target);
  const stats = await statfs(target);
  return { usedBytes: (stats.blocks - stats.bfree) * stats.bsize, totalBytes: stats.blocks * stats.bsize };
};

/** Runs the disk-use image GC every `periodMs` (timer unref'd); returns the stop function. */
export function startImageGcLoop(deps: ImageOpsDeps, log: Logger, periodMs = IMAGE_GC_PERIOD_MS): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void deps
      .imagesInUse()
      .then((inUse) => collectByDiskUsage(deps.store, inUse, statfsUsage))
      .then((removal) => {
        if (removal.deleted.length > 0) log.info('image store above its high-water mark: unused images removed', { deleted: removal.deleted.length, reclaimedBytes: removal.reclaimedBytes });
      })
      .catch((error: unknown) => log.warn('image garbage collection by disk use failed', { error: String(error) }))
      .finally(() => {
        running = false;
      });
  }, periodMs);
  timer.unref();
  return () => clearInterval(timer);
}
