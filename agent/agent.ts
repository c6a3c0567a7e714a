/**
 * The worker role of a node: an image store, a runtime, the task manager and a session to the
 * managers. It never imports manager code: it talks to managers only over the Dispatcher.
 */
import { availableParallelism, totalmem } from 'node:os';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../common/log.js';
import type { NodeCredentials } from '../pki/index.js';
import { createImageStore } from './image/index.js';
import { createRuntime, type Runtime } from './runtime/index.js';
import { TaskManager } from './executor/task-manager.js';
import { AgentSession } from './session/session.js';
import { answerNodeRequest, type ImageRequestHandler } from './attach/node-request-handler.js';
import { DEFAULT_LOG_MAX_BYTES, DEFAULT_LOG_MAX_FILES, LogRotator } from './logs/log-rotation.js';
import { RuntimePaths } from './runtime/paths.js';

export interface AgentOptions {
  dataDir: string;
  hostname: string;
  /** Address other hosts reach this node at. */
  addr: string;
  managers: string[];
  credentials: NodeCredentials;
  runcRoot: string;
  /**
   * Where the per-task tmpfs mounts of secret and config files go; outside dataDir. Default:
   * `secrets` beside runcRoot (e.g. /run/skiff/secrets), which is under /run like runc's state.
   */
  secretsDir?: string;
  cgroupParent: string;
  bridgeName: string;
  bridgeSubnet: string;
  defaultRegistry: string;
  insecureRegistries: string[];
  log: Logger;
  clock?: () => number;
  /** The cluster changed this node's desired role: its certificate is to be renewed now. */
  onRoleChange?: () => void;
  /** Image operations for `skiff image …` (ls, pull, rm, prune, load); absent: refused. */
  images?: ImageRequestHandler;
  /** Container log rotation: size of the current file and old files kept (defaults 10 MiB, 2). */
  logMaxBytes?: number;
  logMaxFiles?: number;
}

export interface RunningAgent {
  runtime: Runtime;
  /** Closes the session and watchers; containers keep running. */
  stop(): Promise<void>;
}

const ARCHITECTURES: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const log = options.log.child({ component: 'agent' });
  const clock = options.clock ?? Date.now;
  const runtimeStateDir = join(options.dataDir, 'runtime');
  const runtime = await createRuntime({
    stateDir: runtimeStateDir,
    runcRoot: options.runcRoot,
    secretsDir: options.secretsDir ?? join(dirname(options.runcRoot), 'secrets'),
    cgroupParent: options.cgroupParent,
    bridgeName: options.bridgeName,
    bridgeSubnet: options.bridgeSubnet,
  });
  const images = createImageStore({
    dataDir: join(options.dataDir, 'images'),
    defaultRegistry: options.defaultRegistry,
    insecureRegistries: options.insecureRegistries,
  });
  // The session is made before the task manager reports anything: reports start only once
  // assignments arrive over that session.
  const tasks: TaskManager = new TaskManager(runtime, images, (taskId, status, addresses) => session.report(taskId, status, addresses), clock, log);
  await tasks.start();
  const runtimePaths = new RuntimePaths(runtimeStateDir);
  const rotator = new LogRotator({
    maxBytes: options.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES,
    maxFiles: options.logMaxFiles ?? DEFAULT_LOG_MAX_FILES,
    // The logs directory, not runtime.list(): cheap enough to look at every few seconds.
    containers: async () =>
      (await readdir(runtimePaths.logsDir).catch(() => []))
        .filter((name) => name.endsWith('.log'))
        .map((name) => name.slice(0, -'.log'.length))
        .map((containerId) => ({ containerId, logPath: runtimePaths.logPath(containerId), ctlFifo: join(runtimePaths.bundleDir(containerId), 'ctl') })),
    log,
  });
  rotator.start();
  let nodeId = '';
  const session: AgentSession = new AgentSession({
    managers: options.managers,
    credentials: options.credentials,
    addr: options.addr,
    description: {
      hostname: options.hostname,
      platform: { os: process.platform, architecture: ARCHITECTURES[process.arch] ?? process.arch },
      resources: { nanoCpus: availableParallelism() * 1e9, memoryBytes: totalmem(), pids: 0 },
      engineVersion: 'skiff-runc',
    },
    log,
    onSessionStarted: (id) => {
      nodeId = id;
      tasks.sessionStarted();
    },
    onRequest: (request, client) => void answerNodeRequest(client, request, { runtime, images: options.images, nodeId: () => nodeId, log }),
    onAssignments: (assignments) => tasks.apply(assignments.kind, assignments.updated, assignments.removed, assignments),
    onNodeChanged: () => options.onRoleChange?.(),
  });
  session.start();
  log.info('agent started', { hostname: options.hostname, managers: options.managers });
  return {
    runtime,
    async stop() {
      session.close();
      await rotator.stop();
      await tasks.stop();
      await runtime.close();
    },
  };
}
