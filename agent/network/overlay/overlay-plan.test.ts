import { describe, expect, it } from 'vitest';
import type { NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import { bridgeName, entryLines, macForAddress, overlayVethName, remoteEntries, vxlanName } from './overlay-plan.js';

function view(endpoints: Array<[address: string, nodeAddr: string]>): NetworkView {
  return {
    network: undefined,
    endpoints: endpoints.map(([address, nodeAddr], index) => ({ taskId: `t${index}`, taskName: `web.${index + 1}`, serviceId: 's', address, nodeId: nodeAddr, nodeAddr, ready: true })),
    services: [],
  };
}

describe('overlay plan', () => {
  it('overlay device names come from the VNI and fit in 15 characters', () => {
    expect(bridgeName(4096)).toBe('skb4096');
    expect(vxlanName(16_777_215)).toBe('skx16777215');
    expect(vxlanName(16_777_215).length).toBeLessThanOrEqual(15);
    expect(() => bridgeName(0)).toThrow(/VNI 0/);
    expect(() => vxlanName(1 << 24)).toThrow(/not in 1\.\./);
  });

  it('overlay MACs are derived from the address, locally administered', () => {
    expect(macForAddress('198.19.0.3/24')).toBe('02:42:c6:13:00:03');
    expect(macForAddress('10.0.1.255')).toBe('02:42:0a:00:01:ff');
  });

  it('overlay veth names are stable per container and network, and at most 15 characters', () => {
    const name = overlayVethName('c1', 'n1');
    expect(name).toBe(overlayVethName('c1', 'n1'));
    expect(name).not.toBe(overlayVethName('c1', 'n2'));
    expect(name).toMatch(/^sv[0-9a-f]{12}$/);
  });

  it('overlay entries program only remote endpoints, replace moved ones and delete gone ones', () => {
    const before = remoteEntries(view([['10.0.0.2/24', '192.168.1.1'], ['10.0.0.3/24', '192.168.1.2'], ['10.0.0.4/24', '192.168.1.3']]), '192.168.1.1');
    expect([...before.keys()]).toEqual(['10.0.0.3', '10.0.0.4']);
    const after = remoteEntries(view([['10.0.0.3/24', '192.168.1.9'], ['10.0.0.5/24', '192.168.1.3'], ['10.0.0.4/24', '192.168.1.3']]), '192.168.1.1');
    expect(entryLines(7, before, after)).toEqual({
      fdb: ['fdb replace 02:42:0a:00:00:03 dev skx7 dst 192.168.1.9 self permanent', 'fdb replace 02:42:0a:00:00:05 dev skx7 dst 192.168.1.3 self permanent'],
      neigh: ['neigh replace 10.0.0.3 lladdr 02:42:0a:00:00:03 dev skx7 nud permanent', 'neigh replace 10.0.0.5 lladdr 02:42:0a:00:00:05 dev skx7 nud permanent'],
    });
    expect(entryLines(7, after, new Map())).toEqual({
      fdb: ['fdb del 02:42:0a:00:00:03 dev skx7 self', 'fdb del 02:42:0a:00:00:05 dev skx7 self', 'fdb del 02:42:0a:00:00:04 dev skx7 self'],
      neigh: ['neigh del 10.0.0.3 dev skx7', 'neigh del 10.0.0.5 dev skx7', 'neigh del 10.0.0.4 dev skx7'],
    });
  });
});
