/**
 * Validation of what registries send: manifests, indexes (manifest lists) and image configs are
 * parsed once here into typed values; the rest of the store trusts them. Also platform selection.
 */
import { ImageError, type ImageHealthcheck, type ImageRunConfig } from './types.js';

/** Manifest media types the store accepts, in the Accept header's order of preference. */
export const MANIFEST_MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** Layer media types the store can unpack, and whether they are gzip-compressed. */
export const LAYER_MEDIA_TYPES: Readonly<Record<string, { gzip: boolean }>> = {
  'application/vnd.oci.image.layer.v1.tar': { gzip: false },
  'application/vnd.oci.image.layer.v1.tar+gzip': { gzip: true },
  'application/vnd.docker.image.rootfs.diff.tar.gzip': { gzip: true },
  'application/vnd.docker.image.rootfs.diff.tar': { gzip: false },
};

/** A content descriptor, validated. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
}

export type ParsedManifest =
  | { kind: 'index'; manifests: Descriptor[] }
  | { kind: 'manifest'; config: Descriptor; layers: Descriptor[] };

/** An image config reduced to what the store keeps. */
export interface ParsedImageConfig {
  run: ImageRunConfig;
  /** Uncompressed layer digests (`rootfs.diff_ids`), base first. */
  diffIds: string[];
}

const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(context: string, reason: string): never {
  throw new ImageError('unsupported_media_type', `cannot pull image ${context}: ${reason}`);
}

function parseJson(bytes: Buffer, context: string, what: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    fail(context, `${what} is not valid JSON`);
  }
  if (!isObject(value)) fail(context, `${what} is not a JSON object`);
  return value;
}

function parseDescriptor(value: unknown, context: string, field: string): Descriptor {
  if (!isObject(value)) fail(context, `${field} is not an object`);
  const { mediaType, digest, size, platform } = value;
  if (typeof mediaType !== 'string') fail(context, `${field}.mediaType is not a string`);
  if (typeof digest !== 'string' || !DIGEST_PATTERN.test(digest)) fail(context, `${field}.digest is not a sha256 digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) fail(context, `${field}.size is not a size`);
  const descriptor: Descriptor = { mediaType, digest, size };
  if (isObject(platform) && typeof platform.os === 'string' && typeof platform.architecture === 'string') {
    descriptor.platform = { os: platform.os, architecture: platform.architecture };
    if (typeof platform.variant === 'string') descriptor.platform.variant = platform.variant;
  }
  return descriptor;
}

/**
 * Parses a manifest or index. `contentType` is the response's Content-Type; when it is missing or
 * generic the document's own `mediaType` decides. Anything else (e.g. Docker schema 1) is refused.
 */
export function parseManifest(bytes: Buffer, contentType: string | null, context: string): ParsedManifest {
  const document = parseJson(bytes, context, 'manifest');
  const headerType = contentType?.split(';')[0]?.trim() ?? '';
  const knownTypes: readonly string[] = Object.values(MANIFEST_MEDIA_TYPES);
  const mediaType = knownTypes.includes(headerType) ? headerType : typeof document.mediaType === 'string' ? document.mediaType : '';
  if (mediaType === MANIFEST_MEDIA_TYPES.ociIndex || mediaType === MANIFEST_MEDIA_TYPES.dockerList) {
    if (!Array.isArray(document.manifests)) fail(context, 'index has no manifests array');
    return { kind: 'index', manifests: document.manifests.map((entry, index) => parseDescriptor(entry, context, `manifests[${index}]`)) };
  }
  if (mediaType === MANIFEST_MEDIA_TYPES.ociManifest || mediaType === MANIFEST_MEDIA_TYPES.dockerManifest) {
    if (!Array.isArray(document.layers)) fail(context, 'manifest has no layers array');
    const layers = document.layers.map((entry, index) => parseDescriptor(entry, context, `layers[${index}]`));
    for (const layer of layers) {
      if (LAYER_MEDIA_TYPES[layer.mediaType] === undefined) fail(context, `layer ${layer.digest} has unsupported media type "${layer.mediaType}"`);
    }
    return { kind: 'manifest', config: parseDescriptor(document.config, context, 'config'), layers };
  }
  fail(context, `manifest media type "${mediaType || headerType || 'none'}" is not an OCI or Docker v2 manifest or index`);
}

/** The OCI architecture name for a Node `process.arch`. */
export function ociArchitecture(nodeArch: string): string {
  const names: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return names[nodeArch] ?? nodeArch;
}

/** Picks the manifest for `os/architecture` from an index, or throws `platform_not_found` listing what there is. */
export function selectPlatform(manifests: Descriptor[], platform: { os: string; architecture: string }, context: string): Descriptor {
  const match = manifests.find(
    (entry) => entry.platform?.os === platform.os && entry.platform.architecture === platform.architecture && !entry.mediaType.includes('index') && !entry.mediaType.includes('list'),
  );
  if (match) return match;
  const available = manifests.map((entry) => (entry.platform ? `${entry.platform.os}/${entry.platform.architecture}` : 'unknown')).join(', ');
  throw new ImageError(
    'platform_not_found',
    `cannot pull image ${context}: no manifest for ${platform.os}/${platform.architecture} (index has: ${available || 'nothing'})`,
  );
}

function stringArray(value: unknown, context: string, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) {
    fail(context, `config field ${field} is not an array of strings`);
  }
  return value;
}

function optionalString(value: unknown, context: string, field: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') fail(context, `config field ${field} is not a string`);
  return value;
}

/** Parses an image config blob: its `config` section (how to run) and `rootfs.diff_ids`. */
export function parseImageConfig(bytes: Buffer, context: string): ParsedImageConfig {
  const document = parseJson(bytes, context, 'image config');
  const section = isObject(document.config) ? document.config : {};
  const rootfs = isObject(document.rootfs) ? document.rootfs : {};
  const diffIds = stringArray(rootfs.diff_ids, context, 'rootfs.diff_ids');
  for (const diffId of diffIds) if (!DIGEST_PATTERN.test(diffId)) fail(context, `config field rootfs.diff_ids has "${diffId}", not a sha256 digest`);
  return {
    run: {
      entrypoint: stringArray(section.Entrypoint, context, 'Entrypoint'),
      cmd: stringArray(section.Cmd, context, 'Cmd'),
      env: stringArray(section.Env, context, 'Env'),
      workingDir: optionalString(section.WorkingDir, context, 'WorkingDir'),
      user: optionalString(section.User, context, 'User'),
      ...healthcheckOf(section.Healthcheck, context),
    },
    diffIds,
  };
}

/** Docker's config `Healthcheck` (durations in nanoseconds) in milliseconds; absent when the image has none. */
function healthcheckOf(value: unknown, context: string): { healthcheck?: ImageHealthcheck } {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) fail(context, 'config field Healthcheck is not an object');
  const test = stringArray(value.Test, context, 'Healthcheck.Test');
  if (test.length === 0) return {};
  const count = (field: string): number => {
    const raw = value[field];
    if (raw === undefined || raw === null) return 0;
    if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0) fail(context, `config field Healthcheck.${field} is not a non-negative integer`);
    return raw;
  };
  const milliseconds = (field: string): number => Math.ceil(count(field) / 1e6);
  return { healthcheck: { test, intervalMs: milliseconds('Interval'), timeoutMs: milliseconds('Timeout'), startPeriodMs: milliseconds('StartPeriod'), retries: count('Retries') } };
}
