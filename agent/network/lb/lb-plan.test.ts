import { describe, expect, it } from 'vitest';
import type { NetworkServiceView, NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import { lbRemoveScript, lbScript, removedBackends, vipBackends } from './lb-plan.js';

const endpoint = (serviceId: string, address: string, ready: boolean) => ({ taskId: address, taskName: '', serviceId, address, nodeId: '', nodeAddr: '', ready });
const service = (serviceId: string, vip: string, endpointMode = 'vip'): NetworkServiceView => ({ serviceId, name: serviceId, vip, endpointMode, ports: [], aliases: [] });

function view(endpoints: ReturnType<typeof endpoint>[], services: NetworkServiceView[]): NetworkView {
  return { network: undefined, endpoints, services } as NetworkView;
}

describe('VIP load-balancer rules', () => {
  const front = view(
    [endpoint('web', '10.0.1.7/24', true), endpoint('web', '10.0.1.5/24', true), endpoint('web', '10.0.1.6/24', false), endpoint('db', '10.0.1.9/24', true)],
    [service('web', '10.0.1.2/24'), service('db', '10.0.1.3/24'), service('rr', '', 'dnsrr'), service('empty', '10.0.1.4/24')],
  );

  it('takes only ready endpoints of each VIP service, bare and sorted', () => {
    expect(vipBackends([front])).toEqual([
      { vip: '10.0.1.2', backends: ['10.0.1.5', '10.0.1.7'] },
      { vip: '10.0.1.3', backends: ['10.0.1.9'] },
      { vip: '10.0.1.4', backends: [] },
    ]);
  });

  it('replaces the whole table in one script: random DNAT to the set, plain DNAT for one, refusal for none', () => {
    const script = lbScript(vipBackends([front]));
    expect(script.startsWith('add table ip skiff_lb\ndelete table ip skiff_lb\ntable ip skiff_lb {\n')).toBe(true);
    expect(script).toContain('  chain vip_10_0_1_2 {\n    dnat to numgen random mod 2 map { 0 : 10.0.1.5, 1 : 10.0.1.7 }\n  }');
    expect(script).toContain('  chain vip_10_0_1_3 {\n    dnat to 10.0.1.9\n  }');
    expect(script).toContain('  chain vip_10_0_1_4 {\n    meta l4proto tcp reject with tcp reset\n    reject\n  }');
    expect(script).not.toContain('10.0.1.6');
  });

  it('costs one lookup per new flow and nothing per packet of an established one: a verdict map in the nat hook, no filter hook', () => {
    const script = lbScript(vipBackends([front]));
    expect(script).toContain('type nat hook output priority -100');
    expect(script).toContain('    ip daddr vmap { 10.0.1.2 : goto vip_10_0_1_2, 10.0.1.3 : goto vip_10_0_1_3, 10.0.1.4 : goto vip_10_0_1_4 }\n');
    expect(script.match(/ hook /g)).toHaveLength(1);
    expect(script).not.toContain('type filter');
    // Each VIP is named once in the lookup, never in a rule of its own.
    expect(script.match(/ip daddr/g)).toHaveLength(1);
  });

  it('with no VIP the table stays, with an empty nat chain and no lookup', () => {
    expect(lbScript([])).toBe('add table ip skiff_lb\ndelete table ip skiff_lb\ntable ip skiff_lb {\n  chain vip_nat {\n    type nat hook output priority -100; policy accept;\n  }\n}\n');
  });

  it('is the same script for the same set in any order (so an unchanged set costs no transaction)', () => {
    const shuffled = view([...front.endpoints].reverse(), [...front.services].reverse());
    expect(lbScript(vipBackends([shuffled]))).toBe(lbScript(vipBackends([front])));
  });

  it('refuses an address that is not IPv4 rather than writing it into a rule', () => {
    expect(() => lbScript([{ vip: '10.0.1.2; flush ruleset', backends: [] }])).toThrow(/not an IPv4 address/);
  });

  it('removal is idempotent (add then delete)', () => {
    expect(lbRemoveScript()).toBe('add table ip skiff_lb\ndelete table ip skiff_lb\n');
  });
});

describe('backends that left a VIP', () => {
  it('are the pairs of the old sets missing from the new ones', () => {
    const before = [{ vip: '10.0.1.2', backends: ['10.0.1.5', '10.0.1.6'] }, { vip: '10.0.1.3', backends: ['10.0.1.9'] }];
    const after = [{ vip: '10.0.1.2', backends: ['10.0.1.6', '10.0.1.7'] }];
    expect(removedBackends(before, after)).toEqual([{ vip: '10.0.1.2', backend: '10.0.1.5' }, { vip: '10.0.1.3', backend: '10.0.1.9' }]);
  });
});
