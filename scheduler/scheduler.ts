/**
 * Placement. Pure and deterministic: the same model and seed give the same decisions, so a
 * failure replays. Spread: a task goes to the feasible node with the fewest tasks of its
 * service, then the fewest tasks overall, then a seeded tie-break.
 */
import { DEFAULT_FILTERS, explainRejections, feasibleNodes, type Filter } from './filters.js';
import type { NodeInfo, ScheduleResult, TaskToPlace } from './model.js';

/** FNV-1a over the seed and node id: a stable, well-mixed tie-break without Math.random. */
function tieBreak(seed: string, nodeId: string): number {
  let hash = 0x811c9dc5;
  for (const char of `${seed}/${nodeId}`) {
    hash ^= char.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

function spreadOrder(serviceId: string, seed: string) {
  return (a: NodeInfo, b: NodeInfo): number =>
    (a.tasksByService.get(serviceId) ?? 0) - (b.tasksByService.get(serviceId) ?? 0) ||
    a.totalTasks - b.totalTasks ||
    tieBreak(seed, a.id) - tieBreak(seed, b.id) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Places `tasks` on `nodes`. The node model is copied; counts grow as tasks are placed so a
 * batch of one service spreads evenly.
 */
export function schedule(
  tasks: readonly TaskToPlace[],
  nodes: readonly NodeInfo[],
  seed: string,
  filters: readonly Filter[] = DEFAULT_FILTERS,
): ScheduleResult {
  const working = nodes.map((node) => ({ ...node, tasksByService: new Map(node.tasksByService) }));
  const result: ScheduleResult = { assignments: new Map(), unplaced: new Map() };
  for (const task of tasks) {
    const { feasible, rejections } = feasibleNodes(task, working, filters);
    const best = feasible.sort(spreadOrder(task.serviceId, seed))[0];
    if (best === undefined) {
      result.unplaced.set(task.taskId, explainRejections(rejections, working.length));
      continue;
    }
    best.tasksByService.set(task.serviceId, (best.tasksByService.get(task.serviceId) ?? 0) + 1);
    best.totalTasks += 1;
    result.assignments.set(task.taskId, best.id);
  }
  return result;
}
