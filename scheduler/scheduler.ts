/**
 * Placement. Pure and deterministic: the same model and seed give the same decisions, so a
 * failure replays. Groups are placed in the order given, each as one batch: the filters run
 * over every node once per group, then each task takes the best node of a PlacementTree and
 * only that node is checked again. Cost: O(nodes × filters) per group plus O(log nodes) per task
 * with one preference level (O(levels × log fan-out) in general).
 */
import { type Constraint, type NodeAttribute, parseConstraint, parsePreference } from './constraint.js';
import { DEFAULT_FILTERS, type Filter, feasibleNodes, firstRejection, type PreparedGroup } from './filters.js';
import type { NodeInfo, ScheduleResult, TaskGroup } from './model.js';
import { PlacementTree, type WorkingNode } from './placement-tree.js';

/** Parses the group's constraints and preferences; the first malformed one is the error. */
export function prepareGroup(group: TaskGroup): { ok: true; value: PreparedGroup } | { ok: false; error: string } {
  const constraints: Constraint[] = [];
  for (const text of group.constraints) {
    const parsed = parseConstraint(text);
    if (!parsed.ok) return parsed;
    constraints.push(parsed.value);
  }
  const preferences: NodeAttribute[] = [];
  for (const text of group.preferences) {
    const parsed = parsePreference(text);
    if (!parsed.ok) return parsed;
    preferences.push(parsed.value);
  }
  return { ok: true, value: { ...group, constraints, preferences } };
}

/**
 * A node's task count per service during one schedule call: the model's counts with this call's
 * placements on top, never changing the model. Copying every node's whole map on every call
 * cost O(nodes × services) per call, most of the scheduler's time in a large cluster.
 */
export class CountsOverlay implements ReadonlyMap<string, number> {
  private readonly own = new Map<string, number>();

  constructor(private readonly base: ReadonlyMap<string, number>) {}

  get(key: string): number | undefined {
    return this.own.get(key) ?? this.base.get(key);
  }

  has(key: string): boolean {
    return this.own.has(key) || this.base.has(key);
  }

  set(key: string, value: number): this {
    this.own.set(key, value);
    return this;
  }

  get size(): number {
    let size = this.base.size;
    for (const key of this.own.keys()) if (!this.base.has(key)) size += 1;
    return size;
  }

  *entries(): MapIterator<[string, number]> {
    for (const [key, value] of this.base) if (!this.own.has(key)) yield [key, value];
    yield* this.own.entries();
  }

  *keys(): MapIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): MapIterator<number> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): MapIterator<[string, number]> {
    return this.entries();
  }

  forEach(callback: (value: number, key: string, map: ReadonlyMap<string, number>) => void): void {
    for (const [key, value] of this.entries()) callback(value, key, this);
  }
}

function workingCopy(node: NodeInfo): WorkingNode {
  return { ...node, reserved: { ...node.reserved }, hostPorts: new Set(node.hostPorts), tasksByService: new CountsOverlay(node.tasksByService) };
}

function takeTask(group: PreparedGroup, node: WorkingNode): void {
  node.tasksByService.set(group.serviceId, (node.tasksByService.get(group.serviceId) ?? 0) + 1);
  node.totalTasks += 1;
  node.reserved.nanoCpus += group.reservations.nanoCpus;
  node.reserved.memoryBytes += group.reservations.memoryBytes;
  for (const port of group.hostPorts) node.hostPorts.add(port);
}

function placeGroup(group: TaskGroup, nodes: readonly WorkingNode[], seed: string, filters: readonly Filter[], result: ScheduleResult): void {
  const prepared = prepareGroup(group);
  if (!prepared.ok) {
    for (const taskId of group.taskIds) result.unplaced.set(taskId, `invalid placement: ${prepared.error}`);
    return;
  }
  const { feasible, rejections } = feasibleNodes(prepared.value, nodes, filters);
  const tree = new PlacementTree(prepared.value, nodes, new Set(feasible), `${seed}/${group.serviceId}`);
  for (const [index, taskId] of group.taskIds.entries()) {
    const leaf = tree.best();
    if (leaf === undefined) {
      // Nodes that filled up during this batch are in the tally too, with the filter that now rejects them.
      const reason = rejections.explain(nodes.length);
      for (const pending of group.taskIds.slice(index)) result.unplaced.set(pending, reason);
      return;
    }
    takeTask(prepared.value, leaf.node);
    result.assignments.set(taskId, leaf.node.id);
    const rejection = firstRejection(prepared.value, leaf.node, filters);
    if (rejection !== undefined) rejections.add(rejection);
    tree.placed(leaf, rejection === undefined);
  }
}

/**
 * Places every group's tasks on `nodes`. The node model is copied; counts, reservations and host
 * ports grow as tasks are placed, so one batch spreads evenly and later groups see earlier ones.
 */
export function schedule(
  groups: readonly TaskGroup[],
  nodes: readonly NodeInfo[],
  seed: string,
  filters: readonly Filter[] = DEFAULT_FILTERS,
): ScheduleResult {
  const working = nodes.map(workingCopy);
  const result: ScheduleResult = { assignments: new Map(), unplaced: new Map() };
  for (const group of groups) placeGroup(group, working, seed, filters, result);
  return result;
}
