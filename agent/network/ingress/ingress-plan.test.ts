import { describe, expect, it } from 'vitest';
import type { NetworkEndpoint, NetworkServiceView, NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import { ingressPlan, ingressScript, MESH_MARK } from './ingress-plan.js';

const H1 = '10.9.0.2';
const H2 = '10.9.0.3';
const H3 = '10.9.0.4';
const node = (nodeAddr: string): NetworkEndpoint => ({ taskId: '', taskName: '', serviceId: '', address: '', nodeId: nodeAddr, nodeAddr, ready: false });
const task = (id: string, serviceId: string, nodeAddr: string, address: string, ready = true): NetworkEndpoint => ({ taskId: id, taskName: id, serviceId, address, nodeId: nodeAddr, nodeAddr, ready });
const port = (publishedPort: number, targetPort: number, publishMode = 'ingress') => ({ name: '', protocol: 'tcp', publishedPort, targetPort, publishMode });
const service = (serviceId: string, ports: NetworkServiceView['ports'], endpointMode = 'cluster'): NetworkServiceView => ({ serviceId, name: serviceId, vip: '', endpointMode, ports });

function view(endpoints: NetworkEndpoint[], services: NetworkServiceView[]): NetworkView {
  return { network: undefined, endpoints: [node(H1), node(H2), node(H3), ...endpoints], services };
}

describe('routing mesh rules', () => {
  const web = [task('a', 'web', H1, '172.20.1.5'), task('b', 'web', H2, '172.20.2.5'), task('c', 'web', H2, '172.20.2.6'), task('d', 'web', H1, '172.20.1.9', false)];

  it('cluster traffic: local ready tasks by bridge address and target port, remote ones through their host on the published port', () => {
    const plan = ingressPlan(view(web, [service('web', [port(8080, 80)])]), H1);
    expect(plan.nodes).toEqual([H2, H3]);
    expect(plan.rules).toEqual([{ protocol: 'tcp', published: 8080, targets: ['172.20.1.5 . 80', `${H2} . 8080`, `${H2} . 8080`], hopTargets: ['172.20.1.5 . 80'] }]);
  });

  it('a hop to a host whose own view has no ready task there is served by a live one (views arrive apart)', () => {
    const switching = [task('a', 'web', H1, '172.20.1.5', false), task('b', 'web', H2, '172.20.2.5')];
    expect(ingressPlan(view(switching, [service('web', [port(8080, 80)])]), H1).rules[0]?.hopTargets).toEqual(['172.20.1.5 . 80']);
    expect(ingressPlan(view(switching, [service('web', [port(8080, 80)])]), H1).rules[0]?.targets).toEqual([`${H2} . 8080`]);
  });

  it('a host with no task forwards everything and refuses hops (never a third host)', () => {
    const script = ingressScript(ingressPlan(view(web, [service('web', [port(8080, 80)])]), H3), 'skbr0');
    expect(script).toContain('ip saddr @nodes fib daddr type local tcp dport 8080 return');
    expect(script).toContain(`fib daddr type local tcp dport 8080 ct mark set ${MESH_MARK} dnat ip to numgen random mod 3 map { 0 : ${H1} . 8080, 1 : ${H2} . 8080, 2 : ${H2} . 8080 }`);
    expect(script).toContain(`ct mark ${MESH_MARK} ip daddr @nodes masquerade`);
    expect(script).toContain('iifname "skbr0" drop');
  });

  it('traffic local and host mode: this host\'s ready tasks only, nothing on a host without one', () => {
    const local = ingressPlan(view(web, [service('web', [port(8080, 80)], 'local'), service('web', [port(9090, 80, 'host')])]), H2);
    expect(local.rules).toEqual([
      { protocol: 'tcp', published: 8080, targets: ['172.20.2.5 . 80', '172.20.2.6 . 80'] },
      { protocol: 'tcp', published: 9090, targets: ['172.20.2.5 . 80', '172.20.2.6 . 80'] },
    ]);
    const empty = ingressScript(ingressPlan(view(web, [service('web', [port(8080, 80)], 'local')]), H3), 'skbr0');
    expect(empty).not.toContain('dport 8080');
  });

  it('one target is a plain DNAT; the script replaces the whole table in one transaction', () => {
    const script = ingressScript(ingressPlan(view([task('a', 'web', H1, '172.20.1.5')], [service('web', [port(8080, 80)])]), H1), 'skbr0');
    expect(script.startsWith('add table ip skiff_ingress\ndelete table ip skiff_ingress\ntable ip skiff_ingress {')).toBe(true);
    expect(script).toContain(`ct mark set ${MESH_MARK} dnat ip to 172.20.1.5:80`);
  });

  it('refuses a target that is not an address', () => {
    expect(() => ingressScript({ nodes: [], rules: [{ protocol: 'tcp', published: 80, targets: ['evil; flush ruleset . 80'] }] }, 'skbr0')).toThrow(/not an IPv4 address/);
  });
});
