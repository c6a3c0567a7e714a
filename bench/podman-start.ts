/**
 * Reference B: Debian's `podman run -d --runtime runc` of the same image, with every piece of
 * podman state in a scratch directory: storage (--root/--runroot), libpod tmp and file locks
 * (--tmpdir, lock_type "file" instead of /dev/shm/libpod_lock), runc's state (--runtime-flag
 * root=...), network and volume config, events off, cgroupfs under a bench cgroup parent.
 * The network is `none` (a loopback-only netns): no CNI/netavark, no NAT, no traffic.
 *
 * The image comes from the lab's own OCI layout (the bits pushed to the lab registry) through
 * `podman pull oci:...`. As root, containers/image always writes its blob-info cache under
 * /var/lib/containers/cache, so the pull runs in a private mount namespace with a tmpfs there.
 */
import { mkdir, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { killAllInCgroupParent, removeCgroupTree } from '../agent/runtime/cgroups.js';
import { unmountAllUnder } from '../agent/runtime/rootfs.js';
import { checkNotStopping, progress, runOrThrow, timedRun, type CleanupStack } from './bench-support.js';
import { RUNC_BINARY } from './runc-start.js';

export const PODMAN_BINARY = 'podman';
/** Limits this machine needs (it lacks CAP_SYS_RESOURCE; podman's defaults exceed the hard limits). */
export const PODMAN_ULIMITS = ['--ulimit', 'nproc=4096:4096', '--ulimit', 'nofile=1024:1024'] as const;
/** Where containers/image keeps its blob-info cache when run as root (not configurable). */
const ROOT_BLOB_INFO_CACHE_PARENT = '/var/lib/containers';
/** The tag the benchmark gives the imported image inside its private storage. */
const LOCAL_IMAGE = 'localhost/bench/web:v1';
const PODMAN_RUN_TIMEOUT_MS = 60_000;

/** One reference run: spawn -> `podman run -d` exited, and spawn -> `runc state` said running. */
export interface PodmanSample {
  returnedMs: number;
  runningMs: number;
}

export interface PodmanReferenceOptions {
  /** Scratch directory (lowercase path: podman's oci: transport needs one); removed by the caller. */
  workDir: string;
  /** OCI image layout directory and its tag, e.g. the lab's images/web-v1 and `v1`. */
  layoutDir: string;
  layoutTag: string;
  /** Relative cgroup parent for containers and conmon, e.g. `/skiff-bench-ab12/podman`. */
  cgroupParent: string;
  cleanups: CleanupStack;
}

/** podman's global flags and environment for storage isolated under `workDir`. */
export interface PodmanSetup {
  globalArgs: string[];
  env: NodeJS.ProcessEnv;
  runcRoot: string;
}

/** Isolated podman storage under `workDir` with the image imported; registers its cleanup. */
export async function setupPodman(options: PodmanReferenceOptions): Promise<PodmanSetup> {
  const setup = await isolatedPodman(options.workDir);
  // Pushed first so that it runs last: containers, then mounts, then conmon stragglers and cgroups.
  options.cleanups.push('podman cgroups', async () => {
    await killAllInCgroupParent(options.cgroupParent);
    await removeCgroupTree(options.cgroupParent);
  });
  options.cleanups.push('podman mounts', () => unmountAllUnder(options.workDir));
  options.cleanups.push('podman containers', async () => {
    await timedRun(PODMAN_BINARY, [...setup.globalArgs, 'rm', '--all', '--force', '--time', '0'], { env: setup.env });
  });
  await importImage(setup, options);
  return setup;
}

/** One `podman run -d` (`bench-podman-<run>`), timed until runc says running, then removed. */
export async function samplePodman(setup: PodmanSetup, options: Pick<PodmanReferenceOptions, 'cgroupParent'>, run: number): Promise<PodmanSample> {
  checkNotStopping();
  const name = `bench-podman-${run}`;
  let startedAt = 0;
  const runArgs = ['run', '--detach', '--pull', 'never', '--name', name, '--runtime', RUNC_BINARY, '--network', 'none', '--cgroup-parent', options.cgroupParent, ...PODMAN_ULIMITS, LOCAL_IMAGE];
  const returned = await timedRun(PODMAN_BINARY, [...setup.globalArgs, ...runArgs], { env: setup.env, timeoutMs: PODMAN_RUN_TIMEOUT_MS, onSpawn: (at) => (startedAt = at) });
  if (returned.exitCode !== 0) throw new Error(`cannot run the podman reference container: ${returned.stderr.trim()}`);
  const containerId = returned.stdout.trim().split('\n').pop() ?? '';
  const state = JSON.parse(await runOrThrow('read runc state of the podman container', RUNC_BINARY, ['--root', setup.runcRoot, 'state', containerId])) as { status?: string };
  const runningMs = performance.now() - startedAt;
  if (state.status !== 'running') throw new Error(`podman reference container ${name} is ${String(state.status)}, not running, after podman run -d returned`);
  await runOrThrow(`remove podman container ${name}`, PODMAN_BINARY, [...setup.globalArgs, 'rm', '--force', '--time', '0', name], { env: setup.env });
  progress(`podman run ${run}: running after ${runningMs.toFixed(1)} ms (returned ${returned.elapsedMs.toFixed(1)} ms)`);
  return { returnedMs: returned.elapsedMs, runningMs };
}

async function isolatedPodman(workDir: string): Promise<PodmanSetup> {
  const dir = (name: string): string => join(workDir, name);
  for (const name of ['root', 'runroot', 'tmp', 'runc', 'net', 'volumes']) await mkdir(dir(name), { recursive: true });
  await writeFile(
    dir('containers.conf'),
    ['[engine]', 'cgroup_manager = "cgroupfs"', 'events_logger = "none"', 'lock_type = "file"', 'num_locks = 64', ''].join('\n'),
  );
  await writeFile(dir('storage.conf'), ['[storage]', 'driver = "overlay"', `graphroot = "${dir('root')}"`, `runroot = "${dir('runroot')}"`, ''].join('\n'));
  await writeFile(dir('registries.conf'), 'unqualified-search-registries = []\n');
  return {
    globalArgs: [
      '--root', dir('root'), '--runroot', dir('runroot'), '--tmpdir', dir('tmp'), '--storage-driver', 'overlay',
      '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', '--runtime-flag', `root=${dir('runc')}`,
      '--network-config-dir', dir('net'), '--volumepath', dir('volumes'),
    ],
    env: {
      ...process.env,
      CONTAINERS_CONF: dir('containers.conf'),
      CONTAINERS_STORAGE_CONF: dir('storage.conf'),
      CONTAINERS_REGISTRIES_CONF: dir('registries.conf'),
    },
    runcRoot: dir('runc'),
  };
}

/** `podman pull oci:LAYOUT:TAG` with a tmpfs over the blob-info cache, then a fixed local tag. */
async function importImage(setup: PodmanSetup, options: PodmanReferenceOptions): Promise<void> {
  const created = !(await stat(ROOT_BLOB_INFO_CACHE_PARENT).then(() => true, () => false));
  if (created) {
    await mkdir(ROOT_BLOB_INFO_CACHE_PARENT);
    options.cleanups.push(`remove ${ROOT_BLOB_INFO_CACHE_PARENT} (made as a mount point)`, () => rmdir(ROOT_BLOB_INFO_CACHE_PARENT));
  }
  const pullArgs = [...setup.globalArgs, 'pull', '--quiet', `oci:${options.layoutDir}:${options.layoutTag}`];
  const script = `mount -t tmpfs bench-blob-cache ${ROOT_BLOB_INFO_CACHE_PARENT} && exec "$@"`;
  const imageId = (await runOrThrow('import the image into podman storage', 'unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', PODMAN_BINARY, ...pullArgs], { env: setup.env })).trim();
  await runOrThrow('tag the podman image', PODMAN_BINARY, [...setup.globalArgs, 'tag', imageId, LOCAL_IMAGE], { env: setup.env });
}
