/**
 * Store fixtures for controller tests: a real Store on a LocalBackend in a temp dir, and node
 * and task objects as the dispatcher and the orchestrator would write them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Service, type Node, type Task } from '../../../proto/skiff/v1/objects.js';
import { HealthState, NodeAvailability, NodeRole, NodeState, TaskState } from '../../../proto/skiff/v1/types.js';
import { LocalBackend } from '../../store/local-backend.js';
import { Store } from '../../store/store.js';

export interface TempStore {
  store: Store;
  close(): Promise<void>;
}

/** A started store in a new temp dir; `clock` stamps createdAt/updatedAt of each write. */
export async function tempStore(clock: () => number = Date.now): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-controller-'));
  const store = new Store(new LocalBackend(dir), clock);
  await store.start();
  return {
    store,
    async close() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function fakeNode(id: string, options: { state?: NodeState; availability?: NodeAvailability; certCaDigest?: string } = {}): Node {
  return {
    meta: { id, version: 0, createdAtMs: 0, updatedAtMs: 0 },
    spec: { desiredRole: NodeRole.NODE_ROLE_WORKER, availability: options.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
    description: { hostname: `host-${id}`, platform: undefined, resources: undefined, engineVersion: '' },
    status: { state: options.state ?? NodeState.NODE_STATE_READY, message: '', addr: '' },
    managerStatus: undefined,
    role: NodeRole.NODE_ROLE_WORKER,
    certCaDigest: options.certCaDigest ?? '',
  };
}

export function fakeTask(id: string, options: { serviceId?: string; slot?: number; nodeId?: string; state?: TaskState; desiredState?: TaskState } = {}): Task {
  return {
    meta: { id, version: 0, createdAtMs: 0, updatedAtMs: 0 },
    serviceId: options.serviceId ?? 'svc',
    serviceName: 'web',
    slot: options.slot ?? 1,
    nodeId: options.nodeId ?? '',
    spec: undefined,
    specVersion: 1,
    imageDigest: '',
    desiredState: options.desiredState ?? TaskState.TASK_STATE_RUNNING,
    status: { state: options.state ?? TaskState.TASK_STATE_NEW, message: 'created', err: '', timestampMs: 0, exitCode: 0, containerId: '', pid: 0, health: HealthState.HEALTH_STATE_NONE },
    networks: [],
    color: '',
    replacesTaskId: '',
  };
}

/** A replicated service as `service create` would store it (fakeTask's default service is 'svc'). */
export function fakeService(id = 'svc', replicas = 1): Service {
  return Service.fromPartial({ meta: { id, version: 0 }, spec: { name: id, mode: { $case: 'replicated', value: { replicas } }, taskTemplate: {} }, specVersion: 1 });
}
