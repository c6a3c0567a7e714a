/**
 * The ranking structure for one batch: a tree with one level per placement preference (a
 * branch per attribute value; nodes without the attribute form their own branch) and the
 * fitting nodes as leaves. Every branch keeps its children in an indexed heap, so the best
 * node is found by walking down the heap tops, and one placement re-sorts one path:
 * O(levels × log fan-out) per task instead of O(nodes).
 *
 * Order among siblings, best first:
 * - failure tier: nodes where the service failed at least REPEATED_FAILURE_THRESHOLD times
 *   recently come after every other node (a branch's tier is its best leaf's);
 * - branches: fewest tasks of the service under the branch (counted over every node with that
 *   value, fitting or not), so tasks spread evenly over the values of the first preference, then
 *   within each over the second, and so on, as in Docker swarm;
 * - leaves, spread: fewest tasks of the service, then fewest tasks overall;
 * - leaves, binpack: highest reserved share of CPU or memory, then most tasks overall;
 * - then a tie-break hashed from the seed, then the id or value, so the order is total.
 */
import { attributeValue } from './constraint.js';
import type { PreparedGroup } from './filters.js';
import { IndexedHeap } from './indexed-heap.js';
import type { NodeInfo, ResourceAmounts } from './model.js';

/** Failures of a service on a node, within the caller's window, from which the node goes last. */
export const REPEATED_FAILURE_THRESHOLD = 3;

/** NodeInfo with the fields a placement changes made mutable: the scheduler's private copy. */
export interface WorkingNode extends NodeInfo {
  reserved: ResourceAmounts;
  hostPorts: Set<string>;
  tasksByService: ReadonlyMap<string, number> & { set(serviceId: string, count: number): unknown };
}

export interface Leaf {
  kind: 'leaf';
  node: WorkingNode;
  parent: Branch;
  serviceCount: number;
  tier: number;
  tieBreak: number;
}

interface Branch {
  kind: 'branch';
  value: string;
  parent: Branch | undefined;
  serviceCount: number;
  /** The tier of the best child; valid while the branch is in its parent's heap. */
  tier: number;
  tieBreak: number;
  heap: IndexedHeap<Leaf | Branch>;
  childByValue: Map<string, Branch>;
}

/** Stands for "the node has no such label"; cannot collide with a value, which is prefixed with '='. */
const MISSING_VALUE = '!missing';

/** FNV-1a over the text: a stable, well-mixed tie-break without Math.random. */
export function tieBreak(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

function utilization(node: WorkingNode): number {
  const cpu = node.capacity.nanoCpus > 0 ? node.reserved.nanoCpus / node.capacity.nanoCpus : 0;
  const memory = node.capacity.memoryBytes > 0 ? node.reserved.memoryBytes / node.capacity.memoryBytes : 0;
  return Math.max(cpu, memory);
}

function spreadBefore(a: Leaf, b: Leaf): number {
  return a.serviceCount - b.serviceCount || a.node.totalTasks - b.node.totalTasks;
}

function binpackBefore(a: Leaf, b: Leaf): number {
  return utilization(b.node) - utilization(a.node) || b.node.totalTasks - a.node.totalTasks;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class PlacementTree {
  private readonly root: Branch;
  private readonly leafOrder: (a: Leaf, b: Leaf) => number;

  /** `fits` are the nodes that passed the filters; every node of `nodes` counts towards its branches. */
  constructor(
    private readonly group: PreparedGroup,
    nodes: readonly WorkingNode[],
    fits: ReadonlySet<WorkingNode>,
    private readonly seed: string,
  ) {
    this.leafOrder = group.strategy === 'binpack' ? binpackBefore : spreadBefore;
    this.root = this.branch('', undefined);
    for (const node of nodes) {
      const serviceCount = node.tasksByService.get(group.serviceId) ?? 0;
      let branch = this.root;
      for (const [level, preference] of group.preferences.entries()) {
        const found = attributeValue(preference, node);
        const value = found === undefined ? MISSING_VALUE : `=${found}`;
        let child = branch.childByValue.get(value);
        if (child === undefined) {
          child = this.branch(`${level}${value}`, branch);
          branch.childByValue.set(value, child);
        }
        child.serviceCount += serviceCount;
        branch = child;
      }
      if (!fits.has(node)) continue;
      const failures = group.recentFailuresByNode.get(node.id) ?? 0;
      const tier = failures >= REPEATED_FAILURE_THRESHOLD ? failures : 0;
      branch.heap.push({ kind: 'leaf', node, parent: branch, serviceCount, tier, tieBreak: tieBreak(`${seed}/${node.id}`) });
    }
    this.attachNonEmptyBranches(this.root);
  }

  /** The node the next task should go to, or undefined when no node fits any more. */
  best(): Leaf | undefined {
    let element = this.root.heap.peek();
    while (element !== undefined && element.kind === 'branch') element = element.heap.peek();
    return element;
  }

  /**
   * Records that `leaf` took one task (its node's counts are already updated) and re-sorts the
   * path to the root; `stillFits` false takes the node out of the running for this batch.
   */
  placed(leaf: Leaf, stillFits: boolean): void {
    leaf.serviceCount += 1;
    if (stillFits) leaf.parent.heap.update(leaf);
    else leaf.parent.heap.remove(leaf);
    let branch = leaf.parent;
    while (branch.parent !== undefined) {
      branch.serviceCount += 1;
      const top = branch.heap.peek();
      if (top === undefined) {
        branch.parent.heap.remove(branch);
      } else {
        branch.tier = top.tier;
        branch.parent.heap.update(branch);
      }
      branch = branch.parent;
    }
  }

  private branch(value: string, parent: Branch | undefined): Branch {
    const heap = new IndexedHeap<Leaf | Branch>((a, b) => this.before(a, b));
    return { kind: 'branch', value, parent, serviceCount: 0, tier: 0, tieBreak: tieBreak(`${this.seed}/${value}`), heap, childByValue: new Map() };
  }

  /** Bottom-up, so a branch's tier is known when it enters its parent's heap. */
  private attachNonEmptyBranches(branch: Branch): void {
    for (const child of branch.childByValue.values()) {
      this.attachNonEmptyBranches(child);
      const top = child.heap.peek();
      if (top === undefined) continue;
      child.tier = top.tier;
      branch.heap.push(child);
    }
  }

  private before(a: Leaf | Branch, b: Leaf | Branch): boolean {
    const byTier = a.tier - b.tier;
    if (byTier !== 0) return byTier < 0;
    let order: number;
    if (a.kind === 'leaf' && b.kind === 'leaf') {
      order = this.leafOrder(a, b) || a.tieBreak - b.tieBreak || compareText(a.node.id, b.node.id);
    } else if (a.kind === 'branch' && b.kind === 'branch') {
      order = a.serviceCount - b.serviceCount || a.tieBreak - b.tieBreak || compareText(a.value, b.value);
    } else {
      throw new Error('PlacementTree: a leaf and a branch are never siblings');
    }
    return order < 0;
  }
}
