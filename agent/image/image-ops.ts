/**
 * The agent's answer to image requests from managers (`skiff image ls|pull|rm|prune|load` on this
 * node): one function over the wire types, so the node-request channel only has to carry messages.
 */
import type { ImageRequest, ImageResponse } from '../../proto/skiff/v1/attach.js';
import { collectGarbage, listImages, pruneImages, removeImage } from './image-catalog.js';
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
