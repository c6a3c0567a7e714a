/**
 * Benchmark "pull" (issue 7): image pull throughput of the agent's image store against
 * `skopeo copy` of the same image from the same registry, alternating, in the same invocation.
 * Goal: >= 1.0x skopeo. Prints one JSON line on stdout; progress goes to stderr.
 *
 *   node dist/bench/pull.js [--runs N] [--layers L] [--layer-mib M]      (npm run bench:pull -- ...)
 *
 * The image: L layers (default 3) of M MiB (default 40) of random, incompressible bytes each
 * (one file per layer, gzip level 1), built as an OCI layout and pushed with skopeo to a real
 * distribution registry (`docker-registry`) that the benchmark starts on 127.0.0.1. Each run,
 * in this order, into a fresh directory that is removed afterwards:
 *   - `skopeo`: `skopeo copy docker://127.0.0.1:PORT/bench/random:v1 dir:DIR` (download and
 *     verify every blob; no unpacking);
 *   - `download`: the agent's RegistryClient fetching the manifest, the config and the layers
 *     (MAX_PARALLEL_LAYERS at a time), hashing (sha256) and writing each blob to a file as
 *     ImageStore.pull does before it unpacks; the like-for-like comparison with skopeo;
 *   - `pull`: `ImageStore.pull` into a fresh store: download, verify, and unpack every layer
 *     (gunzip, tar, diff id check) into a directory tree usable by overlayfs.
 * Needs root only for skopeo's blob-info cache: containers/image writes it to
 * /var/lib/containers/cache as root, so every skopeo call runs in a private mount namespace with
 * a tmpfs there. Removes the registry, its storage and every scratch file on exit, failure and
 * SIGINT/SIGTERM. All traffic is on the loopback interface.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, rmdir, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { createImageStore } from '../agent/image/index.js';
import { MANIFEST_MEDIA_TYPES, parseManifest } from '../agent/image/manifest.js';
import { MAX_PARALLEL_LAYERS } from '../agent/image/image-store.js';
import { RegistryClient } from '../agent/image/registry-client.js';
import { hostOciArchitecture } from '../deploy/images/busybox-image.js';
import { MEDIA_TYPE, sha256Digest, tagManifest, writeBlob, type Descriptor } from '../deploy/images/oci-layout.js';
import { writeTar } from '../deploy/images/tar-writer.js';
import { freePort } from '../deploy/registry/free-port.js';
import { startRegistry } from '../deploy/registry/registry.js';
import { parseIntegerFlags } from './args.js';
import { CleanupStack, checkNotStopping, progress, randomName, runOrThrow } from './bench-support.js';
import { hostFacts } from './lab-bench.js';
import { ratio, summarize, throughputMBps } from './stats.js';

const FLAGS = {
  runs: { default: 5, min: 1, max: 100 },
  layers: { default: 3, min: 1, max: 16 },
  'layer-mib': { default: 40, min: 1, max: 1024 },
};
const USAGE = 'pull [--runs N] [--layers L] [--layer-mib M]';
const REPOSITORY = 'bench/random';
const TAG = 'v1';
/** Issue 7: pull throughput at least 1.0x skopeo's. */
export const GOAL_RATIO = 1.0;
/** Where containers/image keeps its blob-info cache when run as root (not configurable). */
const ROOT_BLOB_INFO_CACHE_PARENT = '/var/lib/containers';
const SKOPEO_TIMEOUT_MS = 300_000;
const MIB = 1024 * 1024;

async function main(): Promise<void> {
  const flags = parseIntegerFlags(process.argv.slice(2), FLAGS, USAGE);
  const runId = randomName(6);
  const workDir = join(tmpdir(), `skiff-bench-pull-${runId}`);
  const cleanups = new CleanupStack();
  cleanups.installSignalHandlers();
  cleanups.push('scratch directory', () => rm(workDir, { recursive: true, force: true }));
  try {
    await mkdir(workDir, { recursive: true });
    await prepareBlobInfoCacheMountPoint(cleanups);
    const addr = `127.0.0.1:${await freePort()}`;
    const registry = await startRegistry({ dataDir: join(workDir, 'registry'), listenAddr: addr });
    cleanups.push('registry', () => registry.stop());
    progress(`registry on ${addr}; building ${flags.layers} x ${flags['layer-mib']} MiB of random layers`);
    const image = await buildRandomImage(join(workDir, 'layout'), flags.layers, flags['layer-mib'] * MIB);
    await skopeo(['copy', '--quiet', '--dest-tls-verify=false', `oci:${join(workDir, 'layout')}:${TAG}`, `docker://${addr}/${REPOSITORY}:${TAG}`]);
    await rm(join(workDir, 'layout'), { recursive: true, force: true });
    progress(`pushed ${addr}/${REPOSITORY}:${TAG}: ${(image.compressedBytes / MIB).toFixed(1)} MiB compressed`);

    const reference = `${addr}/${REPOSITORY}:${TAG}`;
    const series = { skopeo: [] as number[], download: [] as number[], pull: [] as number[] };
    for (let run = 1; run <= flags.runs; run += 1) {
      checkNotStopping();
      const target = join(workDir, `run-${run}`);
      await mkdir(target, { recursive: true });
      series.skopeo.push(await timed(() => skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${reference}`, `dir:${join(target, 'skopeo')}`])));
      series.download.push(await timed(() => downloadOnly(addr, join(target, 'download'))));
      series.pull.push(await timed(() => createImageStore({ dataDir: join(target, 'store'), defaultRegistry: addr, insecureRegistries: [addr] }).pull(reference)));
      await rm(target, { recursive: true, force: true });
      const mbps = (ms: number | undefined): string => (ms === undefined ? '?' : `${ms.toFixed(0)} ms = ${throughputMBps(image.compressedBytes, ms)} MB/s`);
      progress(`run ${run}/${flags.runs}: skopeo ${mbps(series.skopeo.at(-1))}, download ${mbps(series.download.at(-1))}, pull+unpack ${mbps(series.pull.at(-1))}`);
    }
    const summary = (samples: number[]): Record<string, unknown> => {
      const latency = summarize(samples);
      return { ...latency, p50_mbps: throughputMBps(image.compressedBytes, latency.p50_ms) };
    };
    const skopeoSummary = summarize(series.skopeo);
    const downloadSummary = summarize(series.download);
    const pullSummary = summarize(series.pull);
    // Throughput ratio = inverse time ratio (same bytes): skopeo time / ours.
    const downloadRatio = ratio(skopeoSummary.p50_ms, downloadSummary.p50_ms);
    const pullRatio = ratio(skopeoSummary.p50_ms, pullSummary.p50_ms);
    const report = {
      bench: 'pull',
      runs: flags.runs,
      image: { layers: flags.layers, layer_mib: flags['layer-mib'], compressed_bytes: image.compressedBytes, uncompressed_bytes: image.uncompressedBytes },
      skopeo_copy_dir: summary(series.skopeo),
      download_verify: summary(series.download),
      pull_unpack: summary(series.pull),
      ratio_download_over_skopeo: downloadRatio,
      ratio_pull_over_skopeo: pullRatio,
      goal: { ratio_min: GOAL_RATIO, met_download: downloadRatio !== undefined && downloadRatio >= GOAL_RATIO, met_pull: pullRatio !== undefined && pullRatio >= GOAL_RATIO },
      host: { ...(await hostFacts()), skopeo: (await runOrThrow('read the skopeo version', 'skopeo', ['--version'])).trim() },
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await cleanups.runAll();
  }
}

async function timed(action: () => Promise<unknown>): Promise<number> {
  const startedAt = performance.now();
  await action();
  return performance.now() - startedAt;
}

/** Builds the image in an OCI layout: `count` layers with one file of `bytes` random bytes each. */
async function buildRandomImage(layoutDir: string, count: number, bytes: number): Promise<{ compressedBytes: number; uncompressedBytes: number }> {
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  let uncompressedBytes = 0;
  for (let index = 1; index <= count; index += 1) {
    const tar = writeTar([{ kind: 'directory', path: 'data', mode: 0o755 }, { kind: 'file', path: `data/layer-${index}.bin`, mode: 0o644, content: randomBytes(bytes) }], 946_684_800);
    uncompressedBytes += tar.length;
    diffIds.push(sha256Digest(tar));
    layers.push(await writeBlob(layoutDir, MEDIA_TYPE.layerGzip, gzipSync(tar, { level: 1 })));
  }
  const configBytes = Buffer.from(JSON.stringify({ architecture: hostOciArchitecture(), os: 'linux', config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const config = await writeBlob(layoutDir, MEDIA_TYPE.config, configBytes);
  const manifest = await writeBlob(layoutDir, MEDIA_TYPE.manifest, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.manifest, config, layers })));
  await tagManifest(layoutDir, TAG, manifest);
  const compressedBytes = layers.reduce((sum, layer) => sum + layer.size, 0) + config.size;
  return { compressedBytes, uncompressedBytes };
}

/**
 * What ImageStore.pull does before unpacking, with the agent's own RegistryClient: manifest,
 * then config and layers MAX_PARALLEL_LAYERS at a time, each streamed to a file through sha256 and
 * checked against its digest and size.
 */
async function downloadOnly(addr: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const client = new RegistryClient({ registry: addr, repository: REPOSITORY, insecure: true, context: 'bench' });
  const top = await client.getManifest(TAG, [MANIFEST_MEDIA_TYPES.ociManifest, MANIFEST_MEDIA_TYPES.dockerManifest]);
  const manifest = parseManifest(top.bytes, top.contentType, 'bench');
  if (manifest.kind !== 'manifest') throw new Error('cannot download: the bench image is an index');
  const blobs = [manifest.config, ...manifest.layers];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < blobs.length; index = next++) {
      const blob = blobs[index];
      if (blob !== undefined) await downloadBlob(client, blob, join(dir, blob.digest.slice('sha256:'.length)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(MAX_PARALLEL_LAYERS, blobs.length) }, worker));
}

async function downloadBlob(client: RegistryClient, descriptor: { digest: string; size: number }, path: string): Promise<void> {
  const response = await client.getBlob(descriptor.digest);
  if (response.body === null) throw new Error(`cannot download ${descriptor.digest}: empty body`);
  const hash = createHash('sha256');
  const output = createWriteStream(path);
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.length;
    hash.update(chunk);
    if (!output.write(chunk)) await once(output, 'drain');
  }
  output.end();
  await once(output, 'close');
  const actual = `sha256:${hash.digest('hex')}`;
  if (size !== descriptor.size || actual !== descriptor.digest) throw new Error(`cannot download ${descriptor.digest}: got ${size} bytes with digest ${actual}`);
}

/** skopeo in a private mount namespace with a tmpfs over its root blob-info cache. */
async function skopeo(args: string[]): Promise<void> {
  const script = `mount -t tmpfs bench-blob-cache ${ROOT_BLOB_INFO_CACHE_PARENT} && exec "$@"`;
  await runOrThrow(`run skopeo ${args[0] ?? ''}`, 'unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', 'skopeo', ...args], { timeoutMs: SKOPEO_TIMEOUT_MS });
}

/** The tmpfs needs a mount point; if /var/lib/containers does not exist, make it and remove it at the end. */
async function prepareBlobInfoCacheMountPoint(cleanups: CleanupStack): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('cannot run the pull benchmark: it needs root (a private mount namespace for skopeo)');
  const exists = await stat(ROOT_BLOB_INFO_CACHE_PARENT).then(() => true, () => false);
  if (exists) return;
  await mkdir(ROOT_BLOB_INFO_CACHE_PARENT);
  cleanups.push(`remove ${ROOT_BLOB_INFO_CACHE_PARENT} (made as a mount point)`, () => rmdir(ROOT_BLOB_INFO_CACHE_PARENT));
}

main().catch((error: unknown) => {
  progress(`failed: ${error instanceof Error ? error.message : String(error)}`);
  if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = 1;
});
