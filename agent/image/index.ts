/**
 * The image store's public face: `createImageStore` plus the pinned types. Everything else in this
 * folder is an implementation detail.
 */
export { createImageStore, type ImageStoreExtras } from './image-store.js';
export { parseReference, type ImageReference } from './reference.js';
export type { RegistryCredentials } from './registry-client.js';
export { ImageError, type ImageErrorCode, type ImageRunConfig, type ImageStore, type ImageStoreOptions, type PulledImage } from './types.js';
export { collectByDiskUsage, collectGarbage, listImages, pruneImages, removeImage } from './image-catalog.js';
export { loadArchive, type LoadedImage } from './image-load.js';
export { collectImageGarbageAtStartup, createImageOps, startImageGcLoop, type ImageOps, type ImageOpsDeps } from './image-ops.js';
export type { LocalImageStore } from './image-store.js';
export type { ImageRemoval, ImageSummary } from './types.js';
export { resolveImageTag, type TagResolution, type TagResolverOptions } from './tag-resolver.js';
export { readRegistryAuthFile } from './registry-auth-file.js';
