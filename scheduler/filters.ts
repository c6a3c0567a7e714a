/**
 * Feasibility filters: each answers "can this node take one more task of the group?" and, when
 * not, gives a stable explain string, so that a pending task can say why with a count per
 * reason. The strings are part of the user interface (`skiff service ps`): change them only
 * with their tests.
 */
import type { Constraint, NodeAttribute } from './constraint.js';
import { constraintMet } from './constraint.js';
import type { NodeInfo, TaskGroup } from './model.js';

/** A TaskGroup whose constraints and preferences have been parsed (once per batch). */
export interface PreparedGroup extends Omit<TaskGroup, 'constraints' | 'preferences'> {
  constraints: readonly Constraint[];
  preferences: readonly NodeAttribute[];
}

export interface Filter {
  readonly name: string;
  /** Undefined when the node can take one more task of the group; else why not, e.g. "node not ready". */
  reject(group: PreparedGroup, node: NodeInfo): string | undefined;
}

/** Rejects nodes whose agent is not connected and ready. */
export const readyFilter: Filter = {
  name: 'ready',
  reject: (_group, node) => (node.ready ? undefined : 'node not ready'),
};

/** Rejects paused and drained nodes: they take no new tasks. */
export const availabilityFilter: Filter = {
  name: 'availability',
  reject: (_group, node) => (node.availability === 'active' ? undefined : 'node not active (paused or drained)'),
};

/** One reason per constraint, so the user sees which constraint ruled out how many nodes. */
export const constraintFilter: Filter = {
  name: 'constraint',
  reject(group, node) {
    const failed = group.constraints.find((constraint) => !constraintMet(constraint, node));
    return failed === undefined ? undefined : `constraint ${failed.text} not met`;
  },
};

/** Counts tasks of the same service on the node, including ones placed earlier in this batch. */
export const maxReplicasFilter: Filter = {
  name: 'max-replicas',
  reject(group, node) {
    if (group.maxReplicasPerNode === 0) return undefined;
    const onNode = node.tasksByService.get(group.serviceId) ?? 0;
    return onNode < group.maxReplicasPerNode ? undefined : `max replicas per node (${group.maxReplicasPerNode}) reached`;
  },
};

/** Rejects nodes where a host-mode port of the task (port and protocol) is already published. */
export const hostPortFilter: Filter = {
  name: 'host-port',
  reject(group, node) {
    const taken = group.hostPorts.find((port) => node.hostPorts.has(port));
    return taken === undefined ? undefined : `host port ${taken} in use`;
  },
};

/** A reservation must fit beside the reservations already on the node; zero reservations always fit. */
export const cpuFilter: Filter = {
  name: 'cpu',
  reject(group, node) {
    const wanted = group.reservations.nanoCpus;
    return wanted === 0 || node.reserved.nanoCpus + wanted <= node.capacity.nanoCpus ? undefined : 'insufficient cpu';
  },
};

/** As cpuFilter, for memory. */
export const memoryFilter: Filter = {
  name: 'memory',
  reject(group, node) {
    const wanted = group.reservations.memoryBytes;
    return wanted === 0 || node.reserved.memoryBytes + wanted <= node.capacity.memoryBytes ? undefined : 'insufficient memory';
  },
};

/**
 * The filters every task passes through, in order: the first rejection is the one counted. The
 * static ones (node state, constraints) come first; the ones a placement can change come last.
 */
export const DEFAULT_FILTERS: readonly Filter[] = [readyFilter, availabilityFilter, constraintFilter, maxReplicasFilter, hostPortFilter, cpuFilter, memoryFilter];

export interface Rejection {
  reason: string;
  /** Position of the rejecting filter in the chain, to order equal counts. */
  rank: number;
}

/** The first filter's rejection of the node, or undefined when the node fits. */
export function firstRejection(group: PreparedGroup, node: NodeInfo, filters: readonly Filter[] = DEFAULT_FILTERS): Rejection | undefined {
  for (const [rank, filter] of filters.entries()) {
    const reason = filter.reject(group, node);
    if (reason !== undefined) return { reason, rank };
  }
  return undefined;
}

/** How many nodes each reason ruled out. */
export class RejectionTally {
  private readonly counts = new Map<string, { count: number; rank: number }>();

  add(rejection: Rejection): void {
    const entry = this.counts.get(rejection.reason);
    if (entry === undefined) this.counts.set(rejection.reason, { count: 1, rank: rejection.rank });
    else entry.count += 1;
  }

  /**
   * "no suitable node: insufficient memory on 3 nodes; constraint node.labels.zone==b not met on
   * 2 nodes": most nodes first, then filter order, then the text, so the string is stable.
   */
  explain(nodeCount: number): string {
    if (nodeCount === 0) return 'no suitable node: no nodes in the cluster';
    const parts = [...this.counts.entries()]
      .sort(([reasonA, a], [reasonB, b]) => b.count - a.count || a.rank - b.rank || (reasonA < reasonB ? -1 : reasonA > reasonB ? 1 : 0))
      .map(([reason, { count }]) => `${reason} on ${count} node${count === 1 ? '' : 's'}`);
    return `no suitable node: ${parts.join('; ')}`;
  }
}

/** Runs the filters over every node: the nodes that fit, and the tally of the others. */
export function feasibleNodes<N extends NodeInfo>(
  group: PreparedGroup,
  nodes: readonly N[],
  filters: readonly Filter[] = DEFAULT_FILTERS,
): { feasible: N[]; rejections: RejectionTally } {
  const feasible: N[] = [];
  const rejections = new RejectionTally();
  for (const node of nodes) {
    const rejection = firstRejection(group, node, filters);
    if (rejection === undefined) feasible.push(node);
    else rejections.add(rejection);
  }
  return { feasible, rejections };
}
