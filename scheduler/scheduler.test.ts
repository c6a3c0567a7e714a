import { describe, expect, it } from 'vitest';
import { REPEATED_FAILURE_THRESHOLD } from './placement-tree.js';
import { CountsOverlay, schedule } from './scheduler.js';
import { countPerNode, group, node } from './testing/fixtures.js';

const GIB = 1024 ** 3;

describe('scheduler', () => {
  it('scheduler spreads a service evenly over ready active nodes', () => {
    const result = schedule([group(6)], [node('a'), node('b'), node('c')], 'seed');
    expect(countPerNode(result.assignments)).toEqual({ a: 2, b: 2, c: 2 });
    expect(result.unplaced.size).toBe(0);
  });

  it('scheduler prefers nodes with fewer tasks of the service, then fewer tasks overall', () => {
    const busy = node('a', { tasksByService: new Map([['svc', 2]]), totalTasks: 2 });
    const loaded = node('b', { tasksByService: new Map([['other', 5]]), totalTasks: 5 });
    const idle = node('c');
    const result = schedule([group(2)], [busy, loaded, idle], 'seed');
    expect([...result.assignments.values()]).toEqual(['c', 'b']);
  });

  it('scheduler skips down and drained nodes and explains pending tasks with counts per reason', () => {
    const result = schedule([group(1)], [node('a', { ready: false }), node('b', { ready: false }), node('c', { availability: 'drain' })], 's');
    expect(result.assignments.size).toBe(0);
    expect(result.unplaced.get('t0')).toBe('no suitable node: node not ready on 2 nodes; node not active (paused or drained) on 1 node');
  });

  it('scheduler says so when the cluster has no nodes', () => {
    expect(schedule([group(1)], [], 's').unplaced.get('t0')).toBe('no suitable node: no nodes in the cluster');
  });

  it('scheduler is deterministic for a seed and does not mutate its input', () => {
    const nodes = [node('a'), node('b'), node('c'), node('d')];
    const first = schedule([group(3, { hostPorts: ['80/tcp'], reservations: { nanoCpus: 1e9, memoryBytes: GIB } })], nodes, 'seed-1');
    expect(schedule([group(3, { hostPorts: ['80/tcp'], reservations: { nanoCpus: 1e9, memoryBytes: GIB } })], nodes, 'seed-1')).toEqual(first);
    expect(nodes.every((n) => n.totalTasks === 0 && n.tasksByService.size === 0 && n.hostPorts.size === 0 && n.reserved.memoryBytes === 0)).toBe(true);
    const spreads = new Set(['s1', 's2', 's3', 's4', 's5', 's6'].map((seed) => schedule([group(1)], nodes, seed).assignments.get('t0')));
    expect(spreads.size).toBeGreaterThan(1);
  });

  it('scheduler spreads 1,000 replicas evenly and later groups see the tasks of earlier ones', () => {
    const nodes = Array.from({ length: 7 }, (_, index) => node(`n${index}`));
    const result = schedule([group(1_000), group(7, { serviceId: 'other' })], nodes, 'seed');
    const counts = Object.values(countPerNode(result.assignments));
    expect(counts).toHaveLength(7);
    // 1,007 tasks over 7 nodes: 143 or 144 of the first service plus one of the second each.
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });

  it('scheduler fills nodes by reservation and explains the rest with nodes that filled up in the batch', () => {
    const nodes = [node('a', { capacity: { nanoCpus: 4e9, memoryBytes: 2 * GIB } }), node('b', { capacity: { nanoCpus: 1e9, memoryBytes: 8 * GIB } }), node('c', { ready: false })];
    const result = schedule([group(5, { reservations: { nanoCpus: 0.5e9, memoryBytes: GIB } })], nodes, 's');
    expect(countPerNode(result.assignments)).toEqual({ a: 2, b: 2 });
    expect(result.unplaced.get('t4')).toBe('no suitable node: node not ready on 1 node; insufficient cpu on 1 node; insufficient memory on 1 node');
  });

  it('scheduler counts reservations already on a node', () => {
    const nodes = [node('a', { capacity: { nanoCpus: 0, memoryBytes: 4 * GIB }, reserved: { nanoCpus: 0, memoryBytes: 3.5 * GIB } }), node('b', { capacity: { nanoCpus: 0, memoryBytes: 4 * GIB } })];
    const result = schedule([group(4, { reservations: { nanoCpus: 0, memoryBytes: GIB } })], nodes, 's');
    expect(countPerNode(result.assignments)).toEqual({ b: 4 });
  });

  it('scheduler never puts two tasks publishing one host port and protocol on a node', () => {
    const nodes = [node('a', { hostPorts: new Set(['8080/tcp']) }), node('b'), node('c', { hostPorts: new Set(['8080/udp']) })];
    const result = schedule([group(3, { hostPorts: ['8080/tcp'] })], nodes, 's');
    expect(countPerNode(result.assignments)).toEqual({ b: 1, c: 1 });
    expect(result.unplaced.get('t2')).toBe('no suitable node: host port 8080/tcp in use on 3 nodes');
  });

  it('scheduler respects max replicas per node, counting tasks already there', () => {
    const nodes = [node('a', { tasksByService: new Map([['svc', 1]]), totalTasks: 1 }), node('b')];
    const result = schedule([group(5, { maxReplicasPerNode: 2 })], nodes, 's');
    expect(countPerNode(result.assignments)).toEqual({ a: 1, b: 2 });
    expect(result.unplaced.get('t4')).toBe('no suitable node: max replicas per node (2) reached on 2 nodes');
  });

  it('scheduler places only on nodes meeting every constraint and names the unmet ones', () => {
    const nodes = [node('a', { labels: { zone: 'a' } }), node('b', { labels: { zone: 'b' } }), node('m', { role: 'manager', labels: { zone: 'b' } }), node('x')];
    const placed = schedule([group(2, { constraints: ['node.labels.zone==b', 'node.role!=manager'] })], nodes, 's');
    expect(countPerNode(placed.assignments)).toEqual({ b: 2 });
    const none = schedule([group(1, { constraints: ['node.labels.zone==c'] })], nodes, 's');
    expect(none.unplaced.get('t0')).toBe('no suitable node: constraint node.labels.zone==c not met on 4 nodes');
  });

  it('scheduler keeps every task of a group with a malformed constraint pending with the parse error', () => {
    const result = schedule([group(2, { constraints: ['node.labels.zone=b'] })], [node('a')], 's');
    expect(result.unplaced.get('t1')).toBe('invalid placement: constraint "node.labels.zone=b" must be ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE');
    expect(result.assignments.size).toBe(0);
  });

  it('scheduler spreads over label values first, then nodes, with nodes missing the label as their own group', () => {
    const nodes = [node('a1', { labels: { zone: 'a' } }), node('a2', { labels: { zone: 'a' } }), node('a3', { labels: { zone: 'a' } }), node('b1', { labels: { zone: 'b' } }), node('none')];
    const result = schedule([group(6, { preferences: ['node.labels.zone'] })], nodes, 's');
    const counts = countPerNode(result.assignments);
    expect({ a: (counts.a1 ?? 0) + (counts.a2 ?? 0) + (counts.a3 ?? 0), b: counts.b1, none: counts.none }).toEqual({ a: 2, b: 2, none: 2 });
    expect([counts.a1, counts.a2, counts.a3].filter((count) => count === 1)).toHaveLength(2);
  });

  it('scheduler spreads over several preference levels in order, counting tasks already running', () => {
    const nodes = [
      node('a-ssd', { labels: { zone: 'a', disk: 'ssd' }, tasksByService: new Map([['svc', 2]]), totalTasks: 2 }),
      node('a-hdd', { labels: { zone: 'a', disk: 'hdd' } }),
      node('b-ssd', { labels: { zone: 'b', disk: 'ssd' } }),
      node('b-hdd', { labels: { zone: 'b', disk: 'hdd' } }),
    ];
    const result = schedule([group(6, { preferences: ['node.labels.zone', 'node.labels.disk'] })], nodes, 's');
    // Zone a already has 2: zones end at 4 each; within a, hdd catches up with ssd; within b, 2 and 2.
    expect(countPerNode(result.assignments)).toEqual({ 'a-hdd': 2, 'b-ssd': 2, 'b-hdd': 2 });
  });

  it('scheduler spreads over values that can still take tasks when one value fills up', () => {
    const small = { capacity: { nanoCpus: 0, memoryBytes: GIB } };
    const nodes = [node('a1', { labels: { zone: 'a' }, ...small }), node('b1', { labels: { zone: 'b' } }), node('b2', { labels: { zone: 'b' } })];
    const result = schedule([group(5, { preferences: ['node.labels.zone'], reservations: { nanoCpus: 0, memoryBytes: GIB } })], nodes, 's');
    expect(countPerNode(result.assignments)).toEqual({ a1: 1, b1: 2, b2: 2 });
  });

  it('scheduler binpacks onto the fullest fitting node', () => {
    const reservations = { nanoCpus: 1e9, memoryBytes: GIB };
    const nodes = [node('empty'), node('half', { reserved: { nanoCpus: 2e9, memoryBytes: GIB }, totalTasks: 2 }), node('full', { reserved: { nanoCpus: 4e9, memoryBytes: GIB } })];
    const result = schedule([group(4, { strategy: 'binpack', reservations })], nodes, 's');
    expect([...result.assignments.values()]).toEqual(['half', 'half', 'empty', 'empty']);
  });

  it('scheduler binpacks by task count when nothing is reserved, up to the max per node', () => {
    const nodes = [node('a', { totalTasks: 3 }), node('b'), node('c', { totalTasks: 1 })];
    const result = schedule([group(5, { strategy: 'binpack', maxReplicasPerNode: 2 })], nodes, 's');
    expect([...result.assignments.values()]).toEqual(['a', 'a', 'c', 'c', 'b']);
  });

  it('scheduler puts nodes where the service failed repeatedly last, the most failures last of all', () => {
    const nodes = [node('flaky'), node('broken'), node('fine'), node('once')];
    const recentFailuresByNode = new Map([
      ['flaky', REPEATED_FAILURE_THRESHOLD],
      ['broken', REPEATED_FAILURE_THRESHOLD + 5],
      ['once', REPEATED_FAILURE_THRESHOLD - 1],
    ]);
    const result = schedule([group(4, { recentFailuresByNode, maxReplicasPerNode: 1 })], nodes, 's');
    expect([...result.assignments.values()].slice(2)).toEqual(['flaky', 'broken']);
    expect(new Set([...result.assignments.values()].slice(0, 2))).toEqual(new Set(['fine', 'once']));
  });

  it('scheduler prefers a healthy node in a busier label group over a failing node in an emptier one', () => {
    const nodes = [node('a1', { labels: { zone: 'a' }, tasksByService: new Map([['svc', 3]]) }), node('b1', { labels: { zone: 'b' } })];
    const result = schedule([group(1, { preferences: ['node.labels.zone'], recentFailuresByNode: new Map([['b1', 10]]) })], nodes, 's');
    expect(result.assignments.get('t0')).toBe('a1');
  });

  it('scheduler places 100 services of 1,000 replicas on 1,000 nodes evenly', () => {
    const nodes = Array.from({ length: 1_000 }, (_, index) => node(`n${index}`, { labels: { zone: `z${index % 4}` } }));
    const groups = Array.from({ length: 100 }, (_, index) => group(1_000, { serviceId: `s${index}`, preferences: index % 2 === 0 ? ['node.labels.zone'] : [] }));
    const result = schedule(groups, nodes, 'bench');
    expect(result.assignments.size).toBe(100_000);
    expect(new Set(Object.values(countPerNode(result.assignments)))).toEqual(new Set([100]));
  });

  it('CountsOverlay reads through to the model counts and keeps its own writes apart', () => {
    const base = new Map([['a', 2], ['b', 1]]);
    const overlay = new CountsOverlay(base);
    overlay.set('a', 3).set('c', 1);
    expect(overlay.get('a')).toBe(3);
    expect(overlay.get('b')).toBe(1);
    expect(overlay.has('c')).toBe(true);
    expect(overlay.get('d')).toBeUndefined();
    expect(overlay.size).toBe(3);
    expect(Object.fromEntries(overlay)).toEqual({ a: 3, b: 1, c: 1 });
    expect(Object.fromEntries(base)).toEqual({ a: 2, b: 1 });
  });
});
