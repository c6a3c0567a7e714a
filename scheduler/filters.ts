/**
 * Feasibility filters: each answers "can this task run on this node?" and, when not, names the
 * reason so that a pending task can say why, with a count per reason.
 */
import type { NodeInfo, TaskToPlace } from './model.js';

export interface Filter {
  /** Short reason shown to users when the filter rejects a node, e.g. "node not ready". */
  readonly reason: string;
  accepts(task: TaskToPlace, node: NodeInfo): boolean;
}

export const readyFilter: Filter = {
  reason: 'node not ready',
  accepts: (_task, node) => node.ready,
};

export const availabilityFilter: Filter = {
  reason: 'node not active (paused or drained)',
  accepts: (_task, node) => node.availability === 'active',
};

/** The filters every task passes through, in order; the first rejection is the one counted. */
export const DEFAULT_FILTERS: readonly Filter[] = [readyFilter, availabilityFilter];

/** Runs the filters; returns the feasible nodes and, per reason, how many nodes it rejected. */
export function feasibleNodes(
  task: TaskToPlace,
  nodes: readonly NodeInfo[],
  filters: readonly Filter[] = DEFAULT_FILTERS,
): { feasible: NodeInfo[]; rejections: Map<string, number> } {
  const feasible: NodeInfo[] = [];
  const rejections = new Map<string, number>();
  for (const node of nodes) {
    const failed = filters.find((filter) => !filter.accepts(task, node));
    if (failed === undefined) feasible.push(node);
    else rejections.set(failed.reason, (rejections.get(failed.reason) ?? 0) + 1);
  }
  return { feasible, rejections };
}

/** "no suitable node: node not ready on 2 nodes; ..." */
export function explainRejections(rejections: Map<string, number>, nodeCount: number): string {
  if (nodeCount === 0) return 'no suitable node: no nodes in the cluster';
  const parts = [...rejections.entries()].map(([reason, count]) => `${reason} on ${count} node${count === 1 ? '' : 's'}`);
  return `no suitable node: ${parts.join('; ')}`;
}
