/**
 * The image store's public face: `createImageStore` plus the pinned types. Everything else in this
 * folder is an implementation detail.
 */
export { createImageStore, type ImageStoreExtras } from './image-store.js';
export { parseReference, type ImageReference } from './reference.js';
export type { RegistryCredentials } from './registry-client.js';
export { ImageError, type ImageErrorCode, type ImageRunConfig, type ImageStore, type ImageStoreOptions, type PulledImage } from './types.js';
