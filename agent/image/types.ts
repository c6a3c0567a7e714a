/**
 * The image store's public face. The executor asks for an image by reference; the store pulls it
 * (OCI distribution v2), verifies every blob by digest, unpacks each layer once into a shared
 * directory, and returns the layer directories in order (base first) for an overlayfs rootfs.
 */

/** What the image's config says about how to run it (OCI image config `config` section). */
export interface ImageRunConfig {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workingDir: string;
  user: string;
  /** The image's HEALTHCHECK (config `Healthcheck`), when it declares one; durations in ms, 0 = unset. */
  healthcheck?: ImageHealthcheck;
}

/** An image's HEALTHCHECK: `test` is ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"]. */
export interface ImageHealthcheck {
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  retries: number;
}

/** A pulled image whose layers are unpacked on local disk. */
export interface PulledImage {
  /** The reference as asked for, normalised: `registry/repository:tag` or `...@sha256:...`. */
  reference: string;
  /** Manifest digest (`sha256:...`), the identity of the bits that run. */
  digest: string;
  config: ImageRunConfig;
  /** Unpacked layer directories, base layer first. Read-only: never write into them. */
  layerDirs: string[];
}

/** Expected failures of the image store; `code` is stable and safe to switch on. */
export type ImageErrorCode =
  | 'invalid_reference'
  | 'not_found'
  | 'unauthorized'
  | 'registry_unreachable'
  | 'digest_mismatch'
  | 'unsupported_media_type'
  | 'platform_not_found'
  | 'in_use'
  | 'invalid_archive';

export class ImageError extends Error {
  constructor(
    readonly code: ImageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ImageError';
  }
}

export interface ImageStoreOptions {
  /** Root of the store on this host: blobs, unpacked layers, metadata. */
  dataDir: string;
  /** Registry used for references without a registry host, e.g. `demo/web:v1`. */
  defaultRegistry: string;
  /** Registries (host:port) reached over plain HTTP. Every other registry uses HTTPS. */
  insecureRegistries: string[];
}

export interface ImageStore {
  /** Pulls (or finds locally, when the reference is a digest or a tag already resolved) and unpacks. */
  pull(reference: string): Promise<PulledImage>;
  /** Returns the locally stored image for a reference, if any, without network access. */
  getLocal(reference: string): Promise<PulledImage | undefined>;
}

/** One image on a node: every name that points at one manifest digest. */
export interface ImageSummary {
  /** Tags (`registry/repo:tag`); for an untagged image its `registry/repo@digest` names. */
  references: string[];
  digest: string;
  /** Unpacked size of its layers (shared layers counted in each image). */
  sizeBytes: number;
  createdMs: number;
  /** Containers on this node whose image it is. */
  containers: number;
}

/** What a remove, prune or garbage collection took away. */
export interface ImageRemoval {
  /** `untagged: NAME`, `deleted: DIGEST`, `layer sha256:...`, `blob sha256:...`. */
  deleted: string[];
  reclaimedBytes: number;
}
