import { describe, expect, it } from 'vitest';
import type { NodeInfo } from './model.js';
import { schedule } from './scheduler.js';

function node(id: string, overrides: Partial<NodeInfo> = {}): NodeInfo {
  return { id, hostname: id, role: 'worker', ready: true, availability: 'active', labels: {}, tasksByService: new Map(), totalTasks: 0, ...overrides };
}
const tasks = (count: number, serviceId = 'svc') => Array.from({ length: count }, (_, i) => ({ taskId: `t${i}`, serviceId }));

describe('scheduler', () => {
  it('scheduler spreads a service evenly over ready active nodes', () => {
    const result = schedule(tasks(6), [node('a'), node('b'), node('c')], 'seed');
    const perNode = new Map<string, number>();
    for (const nodeId of result.assignments.values()) perNode.set(nodeId, (perNode.get(nodeId) ?? 0) + 1);
    expect([...perNode.values()]).toEqual([2, 2, 2]);
    expect(result.unplaced.size).toBe(0);
  });

  it('scheduler prefers nodes with fewer tasks of the service, then fewer tasks overall', () => {
    const busy = node('a', { tasksByService: new Map([['svc', 2]]), totalTasks: 2 });
    const loaded = node('b', { tasksByService: new Map([['other', 5]]), totalTasks: 5 });
    const idle = node('c');
    const result = schedule(tasks(2), [busy, loaded, idle], 'seed');
    expect([...result.assignments.values()]).toEqual(['c', 'b']);
  });

  it('scheduler skips down and drained nodes and explains pending tasks with counts per reason', () => {
    const result = schedule(tasks(1), [node('a', { ready: false }), node('b', { ready: false }), node('c', { availability: 'drain' })], 's');
    expect(result.assignments.size).toBe(0);
    expect(result.unplaced.get('t0')).toBe('no suitable node: node not ready on 2 nodes; node not active (paused or drained) on 1 node');
  });

  it('scheduler says so when the cluster has no nodes', () => {
    expect(schedule(tasks(1), [], 's').unplaced.get('t0')).toBe('no suitable node: no nodes in the cluster');
  });

  it('scheduler is deterministic for a seed and does not mutate its input', () => {
    const nodes = [node('a'), node('b'), node('c'), node('d')];
    const first = schedule(tasks(3), nodes, 'seed-1');
    expect(schedule(tasks(3), nodes, 'seed-1')).toEqual(first);
    expect(nodes.every((n) => n.totalTasks === 0 && n.tasksByService.size === 0)).toBe(true);
    const spreads = new Set(['s1', 's2', 's3', 's4', 's5', 's6'].map((seed) => schedule(tasks(1), nodes, seed).assignments.get('t0')));
    expect(spreads.size).toBeGreaterThan(1);
  });
});
