/**
 * Reference A: a raw `runc run -d` of the bundle Skiff's runtime would build for the same image.
 * The image is pulled from the lab registry into a private image store with the agent's own code
 * (same layers, same unpacking); each run's bundle is laid out by the runtime's prepareBundle
 * (overlay rootfs, /etc files, config.json from buildOciSpec) with the task request built by the
 * executor's containerRequest. Only `runc run -d` itself is timed; no conmon, no veth.
 */
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { containerRequest } from '../agent/executor/container-request.js';
import { createImageStore } from '../agent/image/index.js';
import type { PulledImage } from '../agent/image/types.js';
import { prepareBundle } from '../agent/runtime/bundle.js';
import { removeCgroupTree } from '../agent/runtime/cgroups.js';
import { readTextIfExists } from '../agent/runtime/fs-util.js';
import { parseNofileHardLimit } from '../agent/runtime/oci-spec.js';
import { RuntimePaths } from '../agent/runtime/paths.js';
import { unmountAllUnder } from '../agent/runtime/rootfs.js';
import { Task } from '../proto/skiff/v1/objects.js';
import { checkNotStopping, progress, runOrThrow, timedRun, type CleanupStack } from './bench-support.js';

/** The runc binary both references use (Debian's). */
export const RUNC_BINARY = 'runc';
/** Deadline of one `runc run -d`. */
const RUNC_RUN_TIMEOUT_MS = 30_000;

/** One reference run: spawn -> `runc run -d` exited, and spawn -> `runc state` said running. */
export interface RuncSample {
  returnedMs: number;
  runningMs: number;
  /** Untimed preparation (overlay mount, /etc files, config.json), for the reading of the figures. */
  bundleMs: number;
}

export interface RuncReferenceOptions {
  /** Scratch directory, removed by the caller's cleanup. */
  workDir: string;
  /** `host:port` of the lab registry (plain HTTP). */
  registry: string;
  /** e.g. `demo/web:v1`. */
  image: string;
  /** Relative cgroup parent for the containers, e.g. `/skiff-bench-ab12/runc`; removed at the end. */
  cgroupParent: string;
  cleanups: CleanupStack;
}

/** What every raw runc start needs: the pulled image, the state layout, runc's root and the host's limits. */
export interface RuncSetup {
  pulled: PulledImage;
  paths: RuntimePaths;
  runcRoot: string;
  cgroupParent: string;
  nofileHardLimit: number;
  hostResolvConf: string | undefined;
}

/**
 * Pulls the image into a private store under `workDir` (the agent's own code) and lays out runc's
 * root and the runtime's state directory there. Registers the removal of the cgroup parent.
 */
export async function setupRunc(options: RuncReferenceOptions): Promise<RuncSetup> {
  const images = createImageStore({ dataDir: join(options.workDir, 'images'), defaultRegistry: options.registry, insecureRegistries: [options.registry] });
  const pulled = await images.pull(options.image);
  const paths = new RuntimePaths(join(options.workDir, 'state'));
  const runcRoot = join(options.workDir, 'runc-root');
  await mkdir(paths.containersDir, { recursive: true });
  await mkdir(runcRoot, { recursive: true });
  options.cleanups.push('runc reference cgroups', () => removeCgroupTree(options.cgroupParent));
  const nofileHardLimit = parseNofileHardLimit(await readFile('/proc/self/limits', 'utf8'));
  const hostResolvConf = await readTextIfExists('/etc/resolv.conf');
  return { pulled, paths, runcRoot, cgroupParent: options.cgroupParent, nofileHardLimit, hostResolvConf };
}

/** One raw runc start (`bench-runc-<run>`): bundle (untimed), `runc run -d`, then teardown. */
export async function sampleRunc(setup: RuncSetup, cleanups: CleanupStack, run: number): Promise<RuncSample> {
  checkNotStopping();
  const containerId = `bench-runc-${run}`;
  const teardown = (): Promise<void> => removeRuncContainer(setup, containerId);
  cleanups.push(`runc container ${containerId}`, teardown);
  const bundleMs = await prepareRuncBundle(setup, containerId);
  const started = await startRuncContainer(setup, containerId);
  await teardown();
  const sample = { ...started, bundleMs };
  progress(`runc run ${run}: running after ${sample.runningMs.toFixed(1)} ms (returned ${sample.returnedMs.toFixed(1)} ms)`);
  return sample;
}

/**
 * Lays out the bundle of `containerId` as the runtime would (overlay rootfs, /etc files,
 * config.json from the executor's containerRequest); returns how long that took (untimed in the figures).
 */
export async function prepareRuncBundle(setup: RuncSetup, containerId: string): Promise<number> {
  const { paths } = setup;
  const bundleStart = performance.now();
  const task = Task.fromPartial({ meta: { id: containerId }, serviceName: 'bench', slot: 1, spec: { container: { image: setup.pulled.reference } } });
  await mkdir(paths.bundleDir(containerId));
  await prepareBundle({
    request: containerRequest(task, setup.pulled),
    paths,
    cgroupParent: setup.cgroupParent,
    nofileHardLimit: setup.nofileHardLimit,
    addresses: [],
    hostResolvConf: setup.hostResolvConf,
  });
  return performance.now() - bundleStart;
}

/** Times `runc run -d` of a prepared bundle: spawn -> returned, and spawn -> `runc state` running. */
export async function startRuncContainer(setup: RuncSetup, containerId: string): Promise<Omit<RuncSample, 'bundleMs'>> {
  const { paths, runcRoot } = setup;
  // DESIGN.md §10: `runc run -d` on pipes that we close dies; files outlive us.
  const outputPath = join(paths.bundleDir(containerId), 'runc-output.log');
  const outputFd = openSync(outputPath, 'a');
  let returned;
  let startedAt = 0;
  try {
    returned = await timedRun(RUNC_BINARY, ['--root', runcRoot, 'run', '--detach', '--bundle', paths.bundleDir(containerId), containerId], {
      stdio: ['ignore', outputFd, outputFd],
      timeoutMs: RUNC_RUN_TIMEOUT_MS,
      onSpawn: (at) => (startedAt = at),
    });
  } finally {
    closeSync(outputFd);
  }
  if (returned.exitCode !== 0) {
    throw new Error(`cannot run the runc reference container: runc exited ${returned.exitCode}: ${(await readTextIfExists(outputPath))?.trim() ?? ''}`);
  }
  const state = JSON.parse(await runOrThrow('read runc state', RUNC_BINARY, ['--root', runcRoot, 'state', containerId])) as { status?: string };
  const runningMs = performance.now() - startedAt;
  if (state.status !== 'running') throw new Error(`runc reference container ${containerId} is ${String(state.status)}, not running, right after runc run -d`);
  return { returnedMs: returned.elapsedMs, runningMs };
}

/** Deletes the container (force), unmounts its rootfs and removes its bundle. Idempotent. */
export async function removeRuncContainer(setup: Pick<RuncSetup, 'runcRoot' | 'paths'>, containerId: string): Promise<void> {
  const { runcRoot, paths } = setup;
  const deleted = await timedRun(RUNC_BINARY, ['--root', runcRoot, 'delete', '--force', containerId]);
  if (deleted.exitCode !== 0 && !/does not exist|not found/i.test(deleted.stderr)) {
    throw new Error(`cannot delete runc container ${containerId}: ${deleted.stderr.trim()}`);
  }
  await unmountAllUnder(paths.bundleDir(containerId));
  await rm(paths.bundleDir(containerId), { recursive: true, force: true });
}
