/**
 * A manager: the store, the control API, the dispatcher and the controllers, served on the
 * node's gRPC port with mutual TLS and on a local unix socket. With the local store backend
 * this manager is the single leader; the Raft backend makes it one of a group.
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log.js';
import { type NodeCredentials, serverCredentials } from '../pki/index.js';
import { ControlService } from '../proto/skiff/v1/control.js';
import { DispatcherService } from '../proto/skiff/v1/dispatcher.js';
import { controlHandlers } from './api/control-service.js';
import { DEFAULT_HEARTBEAT_PERIOD_MS, Dispatcher } from './dispatcher/dispatcher.js';
import { ControllerRunner } from './orchestrator/controller-loop.js';
import { DEFAULT_TASK_HISTORY_LIMIT, reaperController } from './orchestrator/reaper-controller.js';
import { replicatedController } from './orchestrator/replicated-controller.js';
import { schedulerController } from './orchestrator/scheduler-controller.js';
import { LocalBackend } from './store/local-backend.js';
import { Store } from './store/store.js';

/** Largest gRPC message a manager accepts; bigger requests are refused with RESOURCE_EXHAUSTED. */
export const MAX_GRPC_MESSAGE_BYTES = 4 * 1024 * 1024;

export interface ManagerOptions {
  dataDir: string;
  clusterId: string;
  selfNodeId: string;
  credentials: NodeCredentials;
  listenAddr: string;
  advertiseAddr: string;
  controlSocket: string;
  heartbeatPeriodMs?: number;
  clock?: () => number;
  log: Logger;
}

export interface RunningManager {
  store: Store;
  stop(): Promise<void>;
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error) => (error === null ? resolve() : reject(new Error(`cannot listen on ${address}: ${error.message}`))));
  });
}

export async function startManager(options: ManagerOptions): Promise<RunningManager> {
  const clock = options.clock ?? Date.now;
  const log = options.log.child({ component: 'manager' });
  const store = new Store(new LocalBackend(join(options.dataDir, 'store')), clock);
  await store.start();
  if (store.reader.list('cluster').length === 0) {
    await store.update((transaction) =>
      transaction.create('cluster', {
        meta: { id: options.clusterId, version: 0, createdAtMs: 0, updatedAtMs: 0 },
        spec: { name: 'default', heartbeatPeriodMs: DEFAULT_HEARTBEAT_PERIOD_MS, taskHistoryLimit: DEFAULT_TASK_HISTORY_LIMIT },
        rootCaCertPem: options.credentials.caCertPem,
      }),
    );
  }
  const heartbeatPeriodMs = options.heartbeatPeriodMs ?? store.reader.list('cluster')[0]?.spec?.heartbeatPeriodMs ?? DEFAULT_HEARTBEAT_PERIOD_MS;
  const dispatcher = new Dispatcher(
    store,
    { clusterId: options.clusterId, heartbeatPeriodMs, managers: () => [options.advertiseAddr], clock },
    options.log.child({ component: 'dispatcher' }),
  );
  const runners = [replicatedController, schedulerController, reaperController()].map(
    (controller) => new ControllerRunner(controller, store, clock, options.log.child({ component: controller.name })),
  );

  const serverOptions: grpc.ServerOptions = {
    'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  };
  const remote = new grpc.Server(serverOptions);
  const controlOptions = { clusterId: options.clusterId, selfNodeId: options.selfNodeId, selfAddr: options.advertiseAddr };
  remote.addService(ControlService, controlHandlers(store, { ...controlOptions, local: false }));
  remote.addService(DispatcherService, dispatcher.handlers());
  await bind(remote, options.listenAddr, serverCredentials(options.credentials));

  const local = new grpc.Server(serverOptions);
  local.addService(ControlService, controlHandlers(store, { ...controlOptions, local: true }));
  await mkdir(dirname(options.controlSocket), { recursive: true });
  await rm(options.controlSocket, { force: true });
  await bind(local, `unix://${options.controlSocket}`, grpc.ServerCredentials.createInsecure());
  // The socket's file mode is its access control: root only.
  await chmod(options.controlSocket, 0o600);

  dispatcher.start();
  for (const runner of runners) runner.start();
  log.info('manager started', { listenAddr: options.listenAddr, controlSocket: options.controlSocket, storeVersion: store.reader.version });

  return {
    store,
    async stop() {
      for (const runner of runners) runner.stop();
      dispatcher.stop();
      await Promise.all([remote, local].map((server) => new Promise<void>((resolve) => server.tryShutdown(() => resolve()))));
      remote.forceShutdown();
      local.forceShutdown();
      await store.close();
      await rm(options.controlSocket, { force: true });
    },
  };
}
