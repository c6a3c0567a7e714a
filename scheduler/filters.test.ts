import { describe, expect, it } from 'vitest';
import {
  availabilityFilter,
  constraintFilter,
  cpuFilter,
  feasibleNodes,
  type Filter,
  hostPortFilter,
  maxReplicasFilter,
  memoryFilter,
  type PreparedGroup,
  readyFilter,
  RejectionTally,
} from './filters.js';
import type { TaskGroup } from './model.js';
import { prepareGroup } from './scheduler.js';
import { group, node } from './testing/fixtures.js';

function prepared(overrides: Partial<TaskGroup> = {}): PreparedGroup {
  const result = prepareGroup(group(1, overrides));
  if (!result.ok) throw new Error(result.error);
  return result.value;
}

describe('filters', () => {
  it('ready filter rejects a node that is not ready with "node not ready"', () => {
    expect(readyFilter.reject(prepared(), node('a'))).toBeUndefined();
    expect(readyFilter.reject(prepared(), node('a', { ready: false }))).toBe('node not ready');
  });

  it('availability filter rejects paused and drained nodes', () => {
    expect(availabilityFilter.reject(prepared(), node('a'))).toBeUndefined();
    for (const availability of ['pause', 'drain'] as const) {
      expect(availabilityFilter.reject(prepared(), node('a', { availability }))).toBe('node not active (paused or drained)');
    }
  });

  it('constraint filter names the first constraint the node does not meet', () => {
    const wants = prepared({ constraints: ['node.role==worker', 'node.labels.zone == b'] });
    expect(constraintFilter.reject(wants, node('a', { labels: { zone: 'b' } }))).toBeUndefined();
    expect(constraintFilter.reject(wants, node('a', { labels: { zone: 'a' } }))).toBe('constraint node.labels.zone==b not met');
    expect(constraintFilter.reject(wants, node('a', { role: 'manager' }))).toBe('constraint node.role==worker not met');
  });

  it('max replicas filter counts tasks of the same service only', () => {
    const wants = prepared({ maxReplicasPerNode: 2 });
    expect(maxReplicasFilter.reject(wants, node('a', { tasksByService: new Map([['svc', 1], ['other', 9]]) }))).toBeUndefined();
    expect(maxReplicasFilter.reject(wants, node('a', { tasksByService: new Map([['svc', 2]]) }))).toBe('max replicas per node (2) reached');
    expect(maxReplicasFilter.reject(prepared(), node('a', { tasksByService: new Map([['svc', 99]]) }))).toBeUndefined();
  });

  it('host port filter rejects a node where a port and protocol are already published', () => {
    const wants = prepared({ hostPorts: ['8080/tcp', '53/udp'] });
    expect(hostPortFilter.reject(wants, node('a', { hostPorts: new Set(['8080/udp', '53/tcp']) }))).toBeUndefined();
    expect(hostPortFilter.reject(wants, node('a', { hostPorts: new Set(['53/udp']) }))).toBe('host port 53/udp in use');
  });

  it('cpu and memory filters add the reservation to what the node has reserved already', () => {
    const wants = prepared({ reservations: { nanoCpus: 1e9, memoryBytes: 512 } });
    const roomy = node('a', { capacity: { nanoCpus: 2e9, memoryBytes: 1024 }, reserved: { nanoCpus: 1e9, memoryBytes: 512 } });
    expect(cpuFilter.reject(wants, roomy)).toBeUndefined();
    expect(memoryFilter.reject(wants, roomy)).toBeUndefined();
    const full = node('a', { capacity: { nanoCpus: 2e9, memoryBytes: 1024 }, reserved: { nanoCpus: 1.5e9, memoryBytes: 513 } });
    expect(cpuFilter.reject(wants, full)).toBe('insufficient cpu');
    expect(memoryFilter.reject(wants, full)).toBe('insufficient memory');
    const unknown = node('a', { capacity: { nanoCpus: 0, memoryBytes: 0 } });
    expect(memoryFilter.reject(wants, unknown)).toBe('insufficient memory');
    expect(memoryFilter.reject(prepared(), unknown)).toBeUndefined();
  });

  it('feasibleNodes counts only the first rejecting filter per node', () => {
    const wants = prepared({ reservations: { nanoCpus: 0, memoryBytes: 1024 ** 4 }, constraints: ['node.labels.zone==b'] });
    const nodes = [node('fits', { labels: { zone: 'b' }, capacity: { nanoCpus: 0, memoryBytes: 2 * 1024 ** 4 } }), node('down', { ready: false }), node('small', { labels: { zone: 'b' } }), node('elsewhere', { labels: { zone: 'a' } })];
    const { feasible, rejections } = feasibleNodes(wants, nodes);
    expect(feasible.map((n) => n.id)).toEqual(['fits']);
    expect(rejections.explain(nodes.length)).toBe('no suitable node: node not ready on 1 node; constraint node.labels.zone==b not met on 1 node; insufficient memory on 1 node');
  });

  it('rejection tally explains most nodes first, then in filter order, in the documented style', () => {
    const tally = new RejectionTally();
    for (let index = 0; index < 2; index += 1) tally.add({ reason: 'constraint node.labels.zone==b not met', rank: 2 });
    for (let index = 0; index < 3; index += 1) tally.add({ reason: 'insufficient memory', rank: 6 });
    expect(tally.explain(5)).toBe('no suitable node: insufficient memory on 3 nodes; constraint node.labels.zone==b not met on 2 nodes');
    expect(new RejectionTally().explain(0)).toBe('no suitable node: no nodes in the cluster');
  });

  it('feasibleNodes takes a custom filter chain', () => {
    const odd: Filter = { name: 'odd', reject: (_group, candidate) => (candidate.id.endsWith('1') ? undefined : 'not odd') };
    const { feasible, rejections } = feasibleNodes(prepared(), [node('n1'), node('n2')], [odd]);
    expect(feasible.map((n) => n.id)).toEqual(['n1']);
    expect(rejections.explain(2)).toBe('no suitable node: not odd on 1 node');
  });
});
