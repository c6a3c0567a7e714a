/**
 * Tearing containers down: one container (Runtime.remove) or every container of a host
 * (cleanupRuntimeState, used by the lab's `down`). Each step is idempotent and runs even when an
 * earlier one failed; the errors are reported together at the end.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { BridgeNetwork } from '../network/bridge-network.js';
import type { OverlayAttacher } from './types.js';
import { killAllInCgroupParent, removeCgroupTree } from './cgroups.js';
import { unmountContainerFiles } from './container-files.js';
import { liveConmonPid } from './container-record.js';
import { errorMessage, isProcessAlive, listPids, processArgv, readDirIfExists, waitFor } from './fs-util.js';
import { RuntimePaths } from './paths.js';
import { mountsUnder, unmountAllUnder } from './rootfs.js';
import { RuncClient } from './runc.js';

/** How long a SIGKILLed container or conmon may take to disappear. */
export const KILL_WAIT_TIMEOUT_MS = 10_000;
/** Poll interval while waiting for a process to exit. */
export const EXIT_POLL_INTERVAL_MS = 10;
/** A conmon whose container is dead gets this long to write the exit file before SIGKILL. */
const CONMON_GRACE_MS = 200;

export interface TeardownContext {
  paths: RuntimePaths;
  runc: RuncClient;
  cgroupParent: string;
  /** Absent in cleanupRuntimeState (the lab deletes the host's netns, which takes the veths). */
  network?: BridgeNetwork;
  /** Overlay networks; absent in cleanupRuntimeState (the host's netns goes with its devices). */
  overlay?: OverlayAttacher;
}

type Step = (name: string, action: () => Promise<void>) => Promise<void>;

/**
 * A teardown step runner: every step runs even when an earlier one failed, and each failure is
 * collected as "<step>: <reason>" for one error at the end.
 */
function collectingStep(errors: string[]): Step {
  return async (name, action) => {
    try {
      await action();
    } catch (error) {
      errors.push(`${name}: ${errorMessage(error)}`);
    }
  };
}

/** The host veth and bridge address, then the overlay veths: what a container holds on the network. */
async function networkSteps(context: TeardownContext, containerId: string, step: Step): Promise<void> {
  if (context.network !== undefined) {
    const network = context.network;
    await step('network', () => network.detach(containerId));
  }
  if (context.overlay !== undefined) {
    const overlay = context.overlay;
    await step('overlay networks', () => overlay.detach(containerId));
  }
}

/**
 * Gives back what a stopped container holds on the network, as Docker does when a container
 * stops: its veths, its bridge address (free for the next container) and its network namespace
 * (the bind mount at <bundle>/netns). Logs, files and the runc state stay until remove().
 * Idempotent; remove() does it again.
 */
export async function releaseContainerNetwork(context: TeardownContext, containerId: string): Promise<void> {
  const errors: string[] = [];
  const step = collectingStep(errors);
  await networkSteps(context, containerId, step);
  await step('network namespace', () => unmountAllUnder(context.paths.inBundle(containerId, 'netns')));
  if (errors.length > 0) throw new Error(`cannot release the network of container ${containerId}: ${errors.join('; ')}`);
}

/** Kills, deletes and forgets one container: runc state, network, mounts, cgroups, files. */
export async function teardownContainer(context: TeardownContext, containerId: string): Promise<void> {
  const { paths, runc } = context;
  const errors: string[] = [];
  const step = collectingStep(errors);
  await step('kill', async () => {
    const state = await runc.state(containerId);
    if (state === undefined || state.status === 'stopped') return;
    await runc.kill(containerId, 'KILL');
    const gone = await waitFor(() => !isProcessAlive(state.pid), KILL_WAIT_TIMEOUT_MS, EXIT_POLL_INTERVAL_MS);
    if (!gone) throw new Error(`pid ${state.pid} still alive ${KILL_WAIT_TIMEOUT_MS} ms after SIGKILL`);
  });
  await step('runc delete', async () => {
    const result = await runc.forceDelete(containerId);
    if (!result.ok) throw new Error(result.message);
  });
  await step('conmon', async () => {
    const conmonPid = await liveConmonPid(paths, containerId);
    if (conmonPid !== undefined) await killAndWait(conmonPid);
  });
  await networkSteps(context, containerId, step);
  if (paths.secretsDir !== undefined) {
    const filesDir = paths.filesDir(containerId);
    await step('secret files', () => unmountContainerFiles(filesDir));
  }
  const bundleDir = paths.bundleDir(containerId);
  await step('unmount', () => unmountAllUnder(bundleDir));
  await step('cgroups', () => removeCgroupTree(path.posix.join('/', context.cgroupParent, containerId)));
  await step('files', async () => {
    // Never recurse into a live mount: that would delete through it.
    const mounts = await mountsUnder(bundleDir);
    if (mounts.length > 0) throw new Error(`still mounted: ${mounts.join(', ')}`);
    await fs.rm(bundleDir, { recursive: true, force: true });
    await fs.rm(paths.exitFile(containerId), { force: true });
    await fs.rm(paths.logPath(containerId), { force: true });
    // Rotated logs (agent/logs/log-rotation.ts): <log>.1 … <log>.9.
    for (let index = 1; index <= 9; index += 1) await fs.rm(`${paths.logPath(containerId)}.${index}`, { force: true });
    await fs.rm(paths.socketDir(containerId), { recursive: true, force: true });
  });
  if (errors.length > 0) throw new Error(`cannot remove container ${containerId}: ${errors.join('; ')}`);
}

export interface RuntimeStateRoots {
  stateDir: string;
  runcRoot: string;
  cgroupParent: string;
  /** The runtime's secretsDir, when known: every tmpfs under it is unmounted and it is removed. */
  secretsDir?: string;
}

/**
 * Force-removes everything a host's runtime made under these roots: kills every process in the
 * cgroup parent, deletes every runc container, stops leftover conmons, unmounts every mount under
 * stateDir (and secretsDir), removes the cgroup subtree (parent included) and the runtime's files.
 * Idempotent.
 */
export async function cleanupRuntimeState(roots: RuntimeStateRoots): Promise<void> {
  const paths = new RuntimePaths(roots.stateDir);
  const runc = new RuncClient(roots.runcRoot);
  const errors: string[] = [];
  const step = collectingStep(errors);
  await step('kill', async () => {
    await killAllInCgroupParent(roots.cgroupParent);
  });
  await step('runc delete', async () => {
    const known = new Set([...(await readDirIfExists(paths.containersDir)), ...(await listRuncIds(runc))]);
    for (const containerId of known) {
      const result = await runc.forceDelete(containerId);
      if (!result.ok) errors.push(`runc delete ${containerId}: ${result.message}`);
    }
  });
  await step('conmon', async () => {
    for (const pid of await conmonPidsUnder(roots.stateDir)) await killAndWait(pid);
  });
  await step('unmount', () => unmountAllUnder(roots.stateDir));
  if (roots.secretsDir !== undefined) {
    const secretsDir = roots.secretsDir;
    await step('secret files', async () => {
      await unmountAllUnder(secretsDir);
      const mounts = await mountsUnder(secretsDir);
      if (mounts.length > 0) throw new Error(`still mounted: ${mounts.join(', ')}`);
      await fs.rm(secretsDir, { recursive: true, force: true });
    });
  }
  await step('cgroups', () => removeCgroupTree(roots.cgroupParent));
  await step('files', async () => {
    const mounts = await mountsUnder(roots.stateDir);
    if (mounts.length > 0) throw new Error(`still mounted: ${mounts.join(', ')}`);
    for (const dir of [paths.containersDir, paths.exitsDir, paths.logsDir, paths.socketsDir, path.join(roots.stateDir, 'network')]) {
      await fs.rm(dir, { recursive: true, force: true });
    }
    await fs.rm(roots.runcRoot, { recursive: true, force: true });
  });
  if (errors.length > 0) throw new Error(`cannot clean up runtime state in ${roots.stateDir}: ${errors.join('; ')}`);
}

async function listRuncIds(runc: RuncClient): Promise<string[]> {
  try {
    return (await runc.list()).map((state) => state.id);
  } catch {
    return []; // no root yet
  }
}

/** conmon processes whose command line names a path under stateDir. */
export async function conmonPidsUnder(stateDir: string): Promise<number[]> {
  const prefix = stateDir.endsWith('/') ? stateDir : `${stateDir}/`;
  const found: number[] = [];
  for (const pid of await listPids()) {
    const argv = await processArgv(pid);
    if (argv === undefined || !(argv[0] ?? '').endsWith('conmon')) continue;
    if (argv.some((arg) => arg.startsWith(prefix) || arg.includes(`:${prefix}`))) found.push(pid);
  }
  return found;
}

/** Lets a conmon finish on its own briefly (it writes the exit file), then SIGKILLs it. */
async function killAndWait(pid: number): Promise<void> {
  if (await waitFor(() => !isProcessAlive(pid), CONMON_GRACE_MS, EXIT_POLL_INTERVAL_MS)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return; // already gone
  }
  if (!(await waitFor(() => !isProcessAlive(pid), KILL_WAIT_TIMEOUT_MS, EXIT_POLL_INTERVAL_MS))) {
    throw new Error(`conmon ${pid} still alive after SIGKILL`);
  }
}
