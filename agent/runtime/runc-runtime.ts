/**
 * The Runtime implementation: runc containers under conmon, networked on the host bridge.
 *
 * run(): bundle (overlay rootfs, config.json) beside the network namespace (made and addressed
 * before the container exists, bound at <bundle>/netns) -> conmon runs `runc create` (container
 * `created`, joining that netns) while the host veth goes on the bridge -> start through runc's exec fifo (runc.ts startCreated). Nothing
 * here holds a container: a new instance on the same directories adopts them from runc state,
 * meta.json and conmon's exit files.
 *
 * Exit delivery is at least once per Runtime instance: every exit file of a container that still
 * exists is handed to the listeners once (on watchExits, list(), or the watcher), so a restarted
 * agent hears about exits it missed and may hear again about ones it already reported before
 * restarting. remove() deletes the exit file, which ends the story. An exit also gives the
 * container's network back (veths, bridge address, network namespace); its log, files and runc
 * state stay until remove().
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BridgeNetwork, NetworkError } from '../network/bridge-network.js';
import { cgroupRecordedOomKill } from './cgroups.js';
import { createWithConmon } from './conmon.js';
import { mountContainerFiles, removeOrphanedContainerFiles } from './container-files.js';
import { liveConmonPid, readExitCode, readRecord, writeRecord, type ContainerRecord } from './container-record.js';
import { ExitDirWatcher } from './exit-watcher.js';
import { startExec } from './exec.js';
import { errorMessage, isErrno, isProcessAlive, pathExists, readDirIfExists, readTextIfExists, waitFor } from './fs-util.js';
import { parseSignal } from '../../common/container-options.js';
import { prepareBundle, requestProblem } from './bundle.js';
import { DEFAULT_INIT_PATH, type HardLimits } from './isolation.js';
import { KeyedSerializer, type RuntimeLogger } from './log.js';
import { RuntimePaths } from './paths.js';
import { RuncClient, type RuncState } from './runc.js';
import { EXIT_POLL_INTERVAL_MS as STOP_POLL_INTERVAL_MS, KILL_WAIT_TIMEOUT_MS, releaseContainerNetwork, teardownContainer, type TeardownContext } from './teardown.js';
import { RuntimeError, type ContainerInfo, type ContainerRequest, type ExecOptions, type ExecProcess, type ExitListener, type OverlayAttacher, type Runtime } from './types.js';

/** Reported when a container is gone but nobody recorded its exit (conmon died with it). */
export const UNKNOWN_EXIT_CODE = 255;
/** How long a stopped container's live conmon may take to write the exit file. */
const EXIT_FILE_GRACE_MS = 2_000;

/** `promise`, marked as handled now: it is awaited only after other work, and may reject before that. */
function handledLater<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

export interface RuncRuntimeDeps {
  paths: RuntimePaths;
  runc: RuncClient;
  network: BridgeNetwork;
  cgroupParent: string;
  nofileHardLimit: number;
  logger: RuntimeLogger;
  /** The agent's hard rlimits by ulimit name (isolation.ts parseHardLimits); none = unchecked. */
  hardLimits?: HardLimits;
  /** Static tini for `init` requests; default DEFAULT_INIT_PATH. */
  initPath?: string;
  overlay?: OverlayAttacher;
  /** resolv.conf names the resolver on the host bridge's gateway instead of the host's servers. */
  embeddedDns?: boolean;
}

export class RuncRuntime implements Runtime {
  private readonly listeners = new Set<ExitListener>();
  /** Exits already handed to listeners by this instance. */
  private readonly delivered = new Set<string>();
  /** Containers inside run() or remove(): their exits are not news. */
  private readonly busy = new Set<string>();
  private readonly serializer = new KeyedSerializer();
  private readonly watcher: ExitDirWatcher;
  private scanning = false;
  private rescan = false;

  constructor(private readonly deps: RuncRuntimeDeps) {
    this.watcher = new ExitDirWatcher(deps.paths.exitsDir, () => void this.scanExits());
  }

  /**
   * Creates the state directories, removes the secret files of containers that no longer exist
   * (those of containers still there stay mounted: adoption keeps them) and starts watching exits.
   */
  async init(): Promise<void> {
    const { paths } = this.deps;
    for (const dir of [paths.containersDir, paths.exitsDir, paths.logsDir, paths.socketsDir]) await fs.mkdir(dir, { recursive: true });
    if (paths.secretsDir !== undefined) {
      await fs.mkdir(paths.secretsDir, { recursive: true, mode: 0o700 });
      const removed = await removeOrphanedContainerFiles(paths.secretsDir, (id) => pathExists(paths.bundleDir(id)));
      if (removed.length > 0) this.deps.logger.info('removed secret files of containers that are gone', { containerIds: removed });
    }
    this.watcher.start();
  }

  run(request: ContainerRequest): Promise<ContainerInfo> {
    const problem = requestProblem(request, this.deps.hardLimits);
    if (problem !== undefined) return Promise.reject(new RuntimeError('invalid_request', problem));
    const id = request.containerId;
    return this.serializer.run(id, async () => {
      this.busy.add(id);
      try {
        try {
          await fs.mkdir(this.deps.paths.bundleDir(id));
        } catch (error) {
          if (isErrno(error, 'EEXIST')) throw new RuntimeError('already_exists', `cannot run container ${id}: it already exists`);
          throw error;
        }
        try {
          return await this.createAndStart(request);
        } catch (error) {
          await teardownContainer(this.teardownContext(), id).catch((cleanupError: unknown) =>
            this.deps.logger.warn('cannot clean up after a failed start', { containerId: id, error: errorMessage(cleanupError) }),
          );
          throw error;
        }
      } finally {
        this.busy.delete(id);
        this.delivered.delete(id);
        void this.scanExits();
      }
    });
  }

  private async createAndStart(request: ContainerRequest): Promise<ContainerInfo> {
    const { paths, runc, network, logger } = this.deps;
    const id = request.containerId;
    const fail = (code: 'start_failed' | 'network_failed', cause: unknown): RuntimeError =>
      cause instanceof RuntimeError ? cause : new RuntimeError(code, `cannot start container ${id}: ${errorMessage(cause)}`);
    const record: ContainerRecord = { containerId: id, hostname: request.hostname, labels: { ...request.labels }, addresses: [], createdAtMs: Date.now(), startedAtMs: 0 };
    await writeRecord(paths, record);
    const overlayNetworks = request.networks ?? [];
    const overlay = this.deps.overlay;
    let internal = false;
    try {
      if (overlayNetworks.length > 0 && overlay === undefined) throw new RuntimeError('network_failed', `cannot start container ${id}: this runtime has no overlay networks`);
      // Waits for the manager's view of each network: its VNI, and whether it is internal.
      if (overlay !== undefined && overlayNetworks.length > 0) internal = (await overlay.prepare(id, overlayNetworks)).internal;
      record.addresses = [await network.reserve(id)];
      await writeRecord(paths, record);
    } catch (error) {
      throw fail('network_failed', error);
    }
    const phaseMs: Record<string, number> = {};
    let phaseStart = performance.now();
    const endPhase = (name: string): void => {
      const now = performance.now();
      phaseMs[name] = Math.round(((phaseMs[name] ?? 0) + now - phaseStart) * 10) / 10;
      phaseStart = now;
    };
    // The network namespace is made beside the bundle, and the host veth goes on the bridge while
    // `runc create` runs: only the parts not hidden behind those count as phase "network".
    const address = record.addresses[0] ?? '';
    const netnsPath = paths.inBundle(id, 'netns');
    const networkOptions = { internal, isolated: overlayNetworks.length > 0 };
    let namespaceReady: Promise<void> | undefined;
    let hostPlugged: Promise<void> | undefined;
    const networkFailure = (error: unknown): RuntimeError => fail(error instanceof NetworkError ? 'network_failed' : 'start_failed', error);
    let pid: number;
    try {
      await fs.writeFile(netnsPath, '');
      namespaceReady = handledLater(network.createNamespace(id, netnsPath, address, { internal }));
      // On failure teardownContainer unmounts the tmpfs, whatever stage it reached.
      const [fileMounts, hostResolvConf] = await Promise.all([request.files.length === 0 ? [] : mountContainerFiles(paths.filesDir(id), request.files), readTextIfExists('/etc/resolv.conf')]);
      const nameserver = this.deps.embeddedDns === true ? network.gateway : undefined;
      await prepareBundle({ request, paths, cgroupParent: this.deps.cgroupParent, nofileHardLimit: this.deps.nofileHardLimit, addresses: record.addresses, hostResolvConf, fileMounts, initPath: this.deps.initPath ?? DEFAULT_INIT_PATH, netnsPath, ...(nameserver === undefined ? {} : { nameserver }) });
      endPhase('bundle');
    } catch (error) {
      await namespaceReady?.catch(() => undefined); // settled before teardown unmounts it
      throw fail('start_failed', error);
    }
    try {
      await namespaceReady;
      endPhase('network');
    } catch (error) {
      throw networkFailure(error);
    }
    try {
      hostPlugged = handledLater(network.plugHost(id, netnsPath, networkOptions));
      pid = await createWithConmon({
        containerId: id,
        bundleDir: paths.bundleDir(id),
        runcPath: runc.runcPath,
        runcRoot: runc.root,
        containerPidFile: paths.inBundle(id, 'container.pid'),
        conmonPidFile: paths.inBundle(id, 'conmon.pid'),
        exitDir: paths.exitsDir,
        persistDir: paths.inBundle(id, 'persist'),
        logPath: paths.logPath(id),
        socketDir: paths.socketsDir,
        stderrPath: paths.inBundle(id, 'conmon.stderr'),
      });
      endPhase('create');
    } catch (error) {
      await hostPlugged?.catch(() => undefined);
      throw fail('start_failed', error);
    }
    logger.info('none -> created', { containerId: id, pid });
    try {
      await hostPlugged;
      if (overlay !== undefined && overlayNetworks.length > 0) await overlay.attach(id, pid, address, overlayNetworks);
      endPhase('network');
    } catch (error) {
      throw networkFailure(error);
    }
    const started = await runc.startCreated(id, pid);
    if (!started.ok) throw fail('start_failed', started.message);
    endPhase('start');
    record.startedAtMs = Date.now();
    await writeRecord(paths, record);
    logger.info('created -> running', { containerId: id, pid, addresses: record.addresses, startLatencyMs: record.startedAtMs - record.createdAtMs, phaseMs });
    return { ...this.baseInfo(record), status: 'running', pid };
  }

  async list(): Promise<ContainerInfo[]> {
    const { paths, runc } = this.deps;
    const states = new Map((await runc.list()).map((state) => [state.id, state]));
    const infos: ContainerInfo[] = [];
    for (const id of (await readDirIfExists(paths.containersDir)).sort()) {
      if (this.busy.has(id)) continue; // half-made or half-gone; its run()/remove() reports it
      const record = await readRecord(paths, id);
      if (record !== undefined) infos.push(await this.describe(record, states.get(id)));
    }
    void this.scanExits();
    return infos;
  }

  async inspect(containerId: string): Promise<ContainerInfo | undefined> {
    const record = await readRecord(this.deps.paths, containerId);
    if (record === undefined) return undefined;
    return this.describe(record, await this.deps.runc.state(containerId));
  }

  async exec(containerId: string, options: ExecOptions): Promise<ExecProcess> {
    const { paths, runc } = this.deps;
    if ((await readRecord(paths, containerId)) === undefined) throw new RuntimeError('not_found', `cannot exec in container ${containerId}: no such container`);
    const state = await runc.state(containerId);
    if (state?.status !== 'running') throw new RuntimeError('not_found', `cannot exec in container ${containerId}: it is not running`);
    const pidFile = path.join(paths.bundleDir(containerId), `exec-${process.hrtime.bigint().toString(36)}.pid`);
    try {
      return await startExec({ runcPath: runc.runcPath, runcRoot: runc.root, containerId, rootfs: paths.inBundle(containerId, 'rootfs'), pidFile }, options);
    } catch (error) {
      throw new RuntimeError('invalid_request', errorMessage(error));
    }
  }

  stop(containerId: string, timeoutMs: number, signal = 'SIGTERM'): Promise<void> {
    const parsed = parseSignal(signal);
    if (!parsed.ok) return Promise.reject(new RuntimeError('invalid_request', `cannot stop container ${containerId}: ${parsed.error}`));
    return this.serializer.run(containerId, async () => {
      const { paths, runc, logger } = this.deps;
      if ((await readRecord(paths, containerId)) === undefined) throw new RuntimeError('not_found', `cannot stop container ${containerId}: no such container`);
      const state = await runc.state(containerId);
      if (state === undefined || state.status === 'stopped') return;
      if (state.status !== 'created') {
        await runc.kill(containerId, parsed.value); // a failure means it is already exiting; the wait tells
        if (await this.waitStopped(containerId, state.pid, timeoutMs)) return;
        logger.info('stopping -> killing', { containerId, reason: `no exit ${timeoutMs} ms after signal ${parsed.value}` });
      }
      await runc.kill(containerId, 'KILL');
      if (!(await this.waitStopped(containerId, state.pid, KILL_WAIT_TIMEOUT_MS))) {
        throw new Error(`cannot stop container ${containerId}: still running ${KILL_WAIT_TIMEOUT_MS} ms after SIGKILL`);
      }
    });
  }

  remove(containerId: string): Promise<void> {
    return this.serializer.run(containerId, async () => {
      this.busy.add(containerId);
      try {
        await teardownContainer(this.teardownContext(), containerId);
        this.deps.logger.info('stopped -> removed', { containerId });
      } finally {
        this.busy.delete(containerId);
        this.delivered.delete(containerId);
      }
    });
  }

  watchExits(listener: ExitListener): () => void {
    this.listeners.add(listener);
    void this.scanExits();
    return () => {
      this.listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.watcher.stop();
    this.listeners.clear();
  }

  private async describe(record: ContainerRecord, state: RuncState | undefined): Promise<ContainerInfo> {
    const base = this.baseInfo(record);
    if (state !== undefined && state.status !== 'stopped') {
      return { ...base, status: state.status === 'created' || state.status === 'creating' ? 'created' : 'running', pid: state.pid };
    }
    const exitCode = await this.awaitExitCode(record.containerId);
    return { ...base, status: 'stopped', pid: 0, exitCode, oomKilled: await this.oomKilled(record.containerId) };
  }

  private baseInfo(record: ContainerRecord): Omit<ContainerInfo, 'status' | 'pid'> {
    return {
      containerId: record.containerId,
      labels: { ...record.labels },
      addresses: [...record.addresses],
      startedAtMs: record.startedAtMs,
      logPath: this.deps.paths.logPath(record.containerId),
    };
  }

  /** Exit code of a stopped container, waiting briefly when its conmon is still writing it. */
  private async awaitExitCode(containerId: string): Promise<number> {
    let code = await readExitCode(this.deps.paths, containerId);
    if (code === undefined && (await liveConmonPid(this.deps.paths, containerId)) !== undefined) {
      await waitFor(async () => (code = await readExitCode(this.deps.paths, containerId)) !== undefined, EXIT_FILE_GRACE_MS, STOP_POLL_INTERVAL_MS);
    }
    return code ?? UNKNOWN_EXIT_CODE;
  }

  /** Best effort: conmon's OOM marker or the memory cgroup's oom_kill counter (gone after remove). */
  private async oomKilled(containerId: string): Promise<boolean> {
    const { paths } = this.deps;
    if ((await pathExists(path.join(paths.inBundle(containerId, 'persist'), 'oom'))) || (await pathExists(path.join(paths.bundleDir(containerId), 'oom')))) return true;
    return cgroupRecordedOomKill(path.posix.join('/', this.deps.cgroupParent, containerId));
  }

  private async waitStopped(containerId: string, pid: number, timeoutMs: number): Promise<boolean> {
    const { paths } = this.deps;
    return waitFor(
      async () => (await pathExists(paths.exitFile(containerId))) || (!isProcessAlive(pid) && (await liveConmonPid(paths, containerId)) === undefined),
      timeoutMs,
      STOP_POLL_INTERVAL_MS,
    );
  }

  /** Hands every not-yet-delivered exit file to the listeners; runs one pass at a time. */
  private async scanExits(): Promise<void> {
    if (this.listeners.size === 0) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = true;
    try {
      do {
        this.rescan = false;
        for (const id of await readDirIfExists(this.deps.paths.exitsDir)) await this.deliverExit(id);
      } while (this.rescan);
    } catch (error) {
      this.deps.logger.warn('cannot scan exit files', { error: errorMessage(error) });
    } finally {
      this.scanning = false;
    }
  }

  private async deliverExit(containerId: string): Promise<void> {
    if (containerId.startsWith('.') || this.delivered.has(containerId) || this.busy.has(containerId)) return;
    const exitCode = await readExitCode(this.deps.paths, containerId);
    if (exitCode === undefined) return; // not fully written yet: the next pass sees it
    if ((await readRecord(this.deps.paths, containerId)) === undefined) return;
    const oomKilled = await this.oomKilled(containerId);
    this.delivered.add(containerId);
    this.deps.logger.info('running -> stopped', { containerId, exitCode, oomKilled });
    for (const listener of [...this.listeners]) {
      try {
        listener(containerId, exitCode, oomKilled);
      } catch (error) {
        this.deps.logger.warn('exit listener threw', { containerId, error: errorMessage(error) });
      }
    }
    void this.releaseNetwork(containerId);
  }

  /**
   * A stopped container gives its veths, bridge address and network namespace back at once;
   * remove() comes only when its task leaves the node (after the task history keeps it a while).
   */
  private releaseNetwork(containerId: string): Promise<void> {
    return this.serializer
      .run(containerId, async () => {
        const record = await readRecord(this.deps.paths, containerId);
        if (record === undefined) return; // removed meanwhile
        // The record lets go of the address first: once the address is free for another
        // container, no record still shows it (inspect read it in between before).
        if (record.addresses.length > 0) await writeRecord(this.deps.paths, { ...record, addresses: [] });
        await releaseContainerNetwork(this.teardownContext(), containerId);
      })
      .catch((error: unknown) => this.deps.logger.warn('cannot release the network of a stopped container', { containerId, error: errorMessage(error) }));
  }

  private teardownContext(): TeardownContext {
    return { paths: this.deps.paths, runc: this.deps.runc, cgroupParent: this.deps.cgroupParent, network: this.deps.network, ...(this.deps.overlay === undefined ? {} : { overlay: this.deps.overlay }) };
  }
}
