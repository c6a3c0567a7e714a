/** Scheduler inputs for tests: a ready, active, empty worker and a one-service group, with overrides. */
import type { NodeInfo, TaskGroup } from '../model.js';

export function node(id: string, overrides: Partial<NodeInfo> = {}): NodeInfo {
  return {
    id,
    hostname: `host-${id}`,
    role: 'worker',
    ready: true,
    availability: 'active',
    labels: {},
    platform: { os: 'linux', arch: 'x86_64' },
    capacity: { nanoCpus: 4e9, memoryBytes: 8 * 1024 ** 3 },
    reserved: { nanoCpus: 0, memoryBytes: 0 },
    hostPorts: new Set(),
    tasksByService: new Map(),
    totalTasks: 0,
    ...overrides,
  };
}

export function group(count: number, overrides: Partial<TaskGroup> = {}): TaskGroup {
  const serviceId = overrides.serviceId ?? 'svc';
  return {
    serviceId,
    taskIds: Array.from({ length: count }, (_, index) => `${serviceId === 'svc' ? '' : `${serviceId}-`}t${index}`),
    constraints: [],
    preferences: [],
    reservations: { nanoCpus: 0, memoryBytes: 0 },
    hostPorts: [],
    maxReplicasPerNode: 0,
    strategy: 'spread',
    recentFailuresByNode: new Map(),
    ...overrides,
  };
}

/** Tasks per node id of a result's assignments. */
export function countPerNode(assignments: ReadonlyMap<string, string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const nodeId of assignments.values()) counts[nodeId] = (counts[nodeId] ?? 0) + 1;
  return counts;
}
