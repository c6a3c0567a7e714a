import { describe, expect, it } from 'vitest';
import type { Node } from '../../proto/skiff/v1/objects.js';
import { NodeAvailability, NodeRole, NodeState } from '../../proto/skiff/v1/types.js';
import { nodeRow } from './node.js';

function node(extra: Partial<Node> = {}): Node {
  return {
    meta: { id: 'n1', version: 1, createdAtMs: 0, updatedAtMs: 0 },
    spec: { desiredRole: NodeRole.NODE_ROLE_WORKER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
    description: { hostname: 'h2', platform: undefined, resources: undefined, engineVersion: '' },
    status: { state: NodeState.NODE_STATE_READY, message: '', addr: '198.18.0.3' },
    managerStatus: undefined,
    role: NodeRole.NODE_ROLE_WORKER,
    certCaDigest: '',
    ...extra,
  };
}

describe('node rows', () => {
  it('nodeRow has exactly the public node ls fields', () => {
    const row = nodeRow(node());
    expect(Object.keys(row).sort()).toEqual(['id', 'hostname', 'role', 'status', 'availability', 'addr', 'managerStatus'].sort());
    expect(row).toEqual({ id: 'n1', hostname: 'h2', role: 'worker', status: 'ready', availability: 'active', addr: '198.18.0.3', managerStatus: '' });
  });

  it('nodeRow names a down node and a drained or paused one', () => {
    expect(nodeRow(node({ status: { state: NodeState.NODE_STATE_DOWN, message: 'heartbeat failure', addr: '' } })).status).toBe('down');
    expect(nodeRow(node({ status: undefined })).status).toBe('unknown');
    expect(nodeRow(node({ status: { state: NodeState.NODE_STATE_DISCONNECTED, message: '', addr: '' } })).status).toBe('unknown');
    const spec = node().spec!;
    expect(nodeRow(node({ spec: { ...spec, availability: NodeAvailability.NODE_AVAILABILITY_DRAIN } })).availability).toBe('drain');
    expect(nodeRow(node({ spec: { ...spec, availability: NodeAvailability.NODE_AVAILABILITY_PAUSE } })).availability).toBe('pause');
  });

  it('nodeRow shows a manager as leader, reachable or unreachable', () => {
    const manager = (leader: boolean, reachability: string): Node => node({ role: NodeRole.NODE_ROLE_MANAGER, managerStatus: { addr: '198.18.0.2:4242', leader, reachability, raftId: 1 } });
    expect(nodeRow(manager(true, 'reachable'))).toMatchObject({ role: 'manager', managerStatus: 'leader' });
    expect(nodeRow(manager(false, 'reachable')).managerStatus).toBe('reachable');
    expect(nodeRow(manager(false, 'unreachable')).managerStatus).toBe('unreachable');
  });
});
