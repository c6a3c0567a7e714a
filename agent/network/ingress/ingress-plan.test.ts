import { describe, expect, it } from 'vitest';
import type { NetworkEndpoint, NetworkServiceView, NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import { parseRoutes } from './ingress-mesh.js';
import { ingressPlan, ingressScript, MESH_MARK, removedUdpTargets } from './ingress-plan.js';

const H1 = '10.9.0.2';
const H2 = '10.9.0.3';
const H3 = '10.9.0.4';
const node = (nodeAddr: string): NetworkEndpoint => ({ taskId: '', taskName: '', serviceId: '', address: '', nodeId: nodeAddr, nodeAddr, ready: false });
const task = (id: string, serviceId: string, nodeAddr: string, address: string, ready = true): NetworkEndpoint => ({ taskId: id, taskName: id, serviceId, address, nodeId: nodeAddr, nodeAddr, ready });
const port = (publishedPort: number, targetPort: number, publishMode = 'ingress') => ({ name: '', protocol: 'tcp', publishedPort, targetPort, publishMode });
const service = (serviceId: string, ports: NetworkServiceView['ports'], endpointMode = 'cluster'): NetworkServiceView => ({ serviceId, name: serviceId, vip: '', endpointMode, ports, aliases: [] });

function view(endpoints: NetworkEndpoint[], services: NetworkServiceView[]): NetworkView {
  return { network: undefined, endpoints: [node(H1), node(H2), node(H3), ...endpoints], services };
}

describe('routing mesh rules', () => {
  const web = [task('a', 'web', H1, '172.20.1.5'), task('b', 'web', H2, '172.20.2.5'), task('c', 'web', H2, '172.20.2.6'), task('d', 'web', H1, '172.20.1.9', false)];

  it('cluster traffic: every ready task by its bridge address and target port, remote ones routed through their host', () => {
    const plan = ingressPlan(view(web, [service('web', [port(8080, 80)])]), H1, '172.20.1.0/24');
    expect(plan.nodes).toEqual([H2, H3]);
    expect(plan.rules).toEqual([{ protocol: 'tcp', published: 8080, targets: ['172.20.1.5 . 80', '172.20.2.5 . 80', '172.20.2.6 . 80'], hopTargets: ['172.20.1.5 . 80'] }]);
    expect(plan.routes).toEqual([
      { address: '172.20.2.5', via: H2 },
      { address: '172.20.2.6', via: H2 },
    ]);
    // Both of this host's live tasks (the unready one too: its flows may still drain) take direct flows from other hosts.
    expect(plan.backends).toEqual({ tcp: ['172.20.1.5 . 80', '172.20.1.9 . 80'], udp: [] });
  });

  it('the receiving host alone picks the task: a remote host\'s readiness does not matter, a draining remote task keeps its route', () => {
    const switching = [task('a', 'web', H1, '172.20.1.5', false), task('b', 'web', H2, '172.20.2.5'), task('c', 'web', H2, '172.20.2.6', false)];
    const plan = ingressPlan(view(switching, [service('web', [port(8080, 80)])]), H1, '172.20.1.0/24');
    expect(plan.rules[0]?.targets).toEqual(['172.20.2.5 . 80']);
    expect(plan.routes.map((route) => route.address)).toEqual(['172.20.2.5', '172.20.2.6']);
    const script = ingressScript(ingressPlan(view(switching, [service('web', [port(8080, 80)])]), H2, '172.20.2.0/24'), 'skbr0');
    expect(script).toContain('elements = { 172.20.2.5 . 80, 172.20.2.6 . 80 }');
    expect(script).toContain(`ip saddr @nodes oifname "skbr0" ip daddr . tcp dport @tcp_backends ct mark set ${MESH_MARK} accept`);
    expect(script).toContain(`ct mark ${MESH_MARK} oifname != "skbr0" masquerade`);
  });

  it('a remote task in this host\'s own bridge subnet, or without its route, is reached through its host on the published port', () => {
    const same = [task('a', 'web', H1, '172.20.0.5'), task('b', 'web', H2, '172.20.0.5'), task('c', 'web', H3, '172.20.3.7')];
    const plan = ingressPlan(view(same, [service('web', [port(8080, 80)])]), H1, '172.20.0.0/24');
    expect(plan.rules[0]?.targets).toEqual(['172.20.0.5 . 80', `${H2} . 8080`, '172.20.3.7 . 80']);
    expect(plan.routes).toEqual([{ address: '172.20.3.7', via: H3 }]);
    const unrouted = ingressPlan(view(same, [service('web', [port(8080, 80)])]), H1, '172.20.0.0/24', new Set());
    expect(unrouted.rules[0]?.targets).toEqual(['172.20.0.5 . 80', `${H2} . 8080`, `${H3} . 8080`]);
  });

  it('a hop to a host whose own view has no ready task there is served by a live one', () => {
    const switching = [task('a', 'web', H1, '172.20.0.5', false), task('b', 'web', H2, '172.20.0.6')];
    const plan = ingressPlan(view(switching, [service('web', [port(8080, 80)])]), H1, '172.20.0.0/24');
    expect(plan.rules[0]?.hopTargets).toEqual(['172.20.0.5 . 80']);
    expect(plan.rules[0]?.targets).toEqual([`${H2} . 8080`]);
  });

  it('a host with no task sends everything on and refuses hops (never a third host)', () => {
    const script = ingressScript(ingressPlan(view(web, [service('web', [port(8080, 80)])]), H3, '172.20.3.0/24', new Set(['172.20.1.5', '172.20.1.9', '172.20.2.5'])), 'skbr0');
    expect(script).toContain('ip saddr @nodes fib daddr type local tcp dport 8080 return');
    expect(script).toContain(`fib daddr type local tcp dport 8080 ct mark set ${MESH_MARK} dnat ip to numgen random mod 3 map { 0 : ${H2} . 8080, 1 : 172.20.1.5 . 80, 2 : 172.20.2.5 . 80 }`);
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
    expect(() => ingressScript({ nodes: [], rules: [{ protocol: 'tcp', published: 80, targets: ['evil; flush ruleset . 80'] }], routes: [], backends: { tcp: [], udp: [] } }, 'skbr0')).toThrow(/not an IPv4 address/);
  });

  it('reads its own routes back from `ip -json route show` (host routes with a gateway only)', () => {
    const json = JSON.stringify([
      { dst: '172.20.2.5', gateway: H2, dev: 'eth0', protocol: '83', scope: 'global', flags: [] },
      { dst: '172.20.9.0/24', gateway: H2, dev: 'eth0', flags: [] },
      { dst: '172.20.2.6', dev: 'eth0', flags: [] },
    ]);
    expect(parseRoutes(json)).toEqual([{ address: '172.20.2.5', via: H2 }]);
    expect(parseRoutes('')).toEqual([]);
    expect(() => parseRoutes('garbage')).toThrow(/no JSON/);
  });

  it('UDP targets a change drops are the conntrack entries to delete; TCP ones are left to finish', () => {
    const udp = (publishedPort: number, targetPort: number) => ({ ...port(publishedPort, targetPort), protocol: 'udp' });
    const services = [service('dns', [udp(53, 5353)]), service('web', [port(8080, 80)])];
    const both = [task('a', 'dns', H1, '172.20.1.5'), task('b', 'dns', H2, '172.20.2.5'), task('c', 'web', H1, '172.20.1.6'), task('d', 'web', H2, '172.20.2.6')];
    const before = ingressPlan(view(both, services), H1, '172.20.1.0/24');
    const after = ingressPlan(view(both.filter((endpoint) => endpoint.taskId !== 'b' && endpoint.taskId !== 'd'), services), H1, '172.20.1.0/24');
    expect(removedUdpTargets(before, after)).toEqual([{ published: 53, address: '172.20.2.5' }]);
    expect(removedUdpTargets(before, undefined)).toEqual([
      { published: 53, address: '172.20.1.5' },
      { published: 53, address: '172.20.2.5' },
    ]);
    expect(removedUdpTargets(undefined, before)).toEqual([]);
  });
});
