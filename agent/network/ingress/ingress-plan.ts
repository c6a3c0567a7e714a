/**
 * The routing mesh of one host as one nftables table (pure). For each published port P -> T of a
 * service (from the dispatcher's ingress view, see manager/dispatcher/ingress-view.ts):
 *
 * - ingress mode, traffic `cluster` (the default): a new connection to any local address of the
 *   host on P goes to one of the service's ready tasks, picked at random: a task on this host
 *   directly (its host-bridge address, port T; the client's address is kept), a task on another
 *   host by its host-bridge address too, routed through that host's underlay address (a /32
 *   route per remote task, see `routes`), with this host's address as source so the replies come
 *   back through here. So the receiving host alone picks the task: when its view switches (a
 *   blue/green switch is one `nft -f`), no answer of the old set follows, whatever the other
 *   hosts' views say at that moment. That host lets such a flow through to its bridge only for
 *   its own live tasks' address and target port (`backends`).
 * - A remote task whose host-bridge address falls in this host's own bridge subnet (hosts
 *   configured with the same `--bridge-subnet`) cannot be routed to; it is reached through its
 *   host instead (underlay address, port P). A connection that comes from another node of the
 *   cluster to P is such a hop: it goes to that host's own tasks only, never on to a third host.
 * - ingress mode, traffic `local`, and host mode: only this host's ready tasks (the client's
 *   address is kept); a host without one refuses the connection.
 *
 * Only flows these rules translated are marked, masqueraded (those sent on to another node) and
 * let through the forward hook; other forwarding from or to the host bridge is dropped, so
 * turning IP forwarding on for the mesh does not make the host a router for its containers.
 * The whole table is replaced in one `nft -f` transaction.
 */
import type { NetworkEndpoint, NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import { containsAddress, parseAddress, parseSubnet } from '../subnet.js';
import { compareText } from '../../../common/compare.js';

export const INGRESS_TABLE = 'skiff_ingress';
/** Conntrack mark of the flows the mesh translated. */
export const MESH_MARK = '0x534b4d01';

export interface PublishedRule {
  protocol: 'tcp' | 'udp';
  published: number;
  /** `addr . port` targets for a connection from outside the cluster. */
  targets: string[];
  /** Targets for a hop from another node (this host's tasks only); undefined: same as `targets`. */
  hopTargets?: string[];
}

/** A host route to a task on another host: its host-bridge address through that host's underlay address. */
export interface TaskRoute {
  address: string;
  via: string;
}

export interface IngressPlan {
  /** Underlay addresses of the other nodes. */
  nodes: string[];
  rules: PublishedRule[];
  /** Routes to the live remote tasks this host sends to directly (live, not only ready: a draining task keeps its flows). */
  routes: TaskRoute[];
  /** `addr . port` of this host's live tasks that other hosts may send to directly, per protocol. */
  backends: { tcp: string[]; udp: string[] };
}

/**
 * The rules of this host (underlay `localAddr`) from the ingress view. `bridgeSubnet` is this
 * host's own container bridge subnet: remote tasks inside it are reached through their host.
 * `routed`, when given, lists the remote task addresses whose routes are in place; the others
 * are reached through their host too.
 */
export function ingressPlan(view: NetworkView, localAddr: string, bridgeSubnet?: string, routed?: ReadonlySet<string>): IngressPlan {
  const nodes = new Set<string>();
  for (const endpoint of view.endpoints) if (endpoint.nodeAddr !== '' && endpoint.nodeAddr !== localAddr) nodes.add(endpoint.nodeAddr);
  const own = bridgeSubnet === undefined ? undefined : parseSubnet(bridgeSubnet);
  const routable = (endpoint: NetworkEndpoint): boolean => isIpv4(endpoint.address) && (own === undefined || !containsAddress(own, parseAddress(endpoint.address)));
  const rules: PublishedRule[] = [];
  const routes = new Map<string, string>();
  const backends = { tcp: new Set<string>(), udp: new Set<string>() };
  const taken = new Set<string>();
  for (const service of view.services) {
    const live = view.endpoints.filter((endpoint) => endpoint.taskId !== '' && endpoint.serviceId === service.serviceId);
    const ready = live.filter((endpoint) => endpoint.ready);
    const local = ready.filter((endpoint) => endpoint.nodeAddr === localAddr && endpoint.address !== '');
    const remote = ready.filter((endpoint) => endpoint.nodeAddr !== localAddr && endpoint.nodeAddr !== '');
    const clusterWide = service.endpointMode !== 'local' && service.ports.some((port) => port.publishedPort > 0 && port.publishMode !== 'host');
    if (clusterWide) {
      for (const endpoint of live) {
        if (endpoint.nodeAddr === '' || endpoint.nodeAddr === localAddr || !routable(endpoint)) continue;
        routes.set(endpoint.address, endpoint.nodeAddr);
      }
    }
    for (const port of service.ports) {
      const protocol = port.protocol === 'udp' ? 'udp' : 'tcp';
      const key = `${protocol}/${port.publishedPort}`;
      if (port.publishedPort <= 0 || taken.has(key)) continue;
      taken.add(key);
      const localTargets = local.map((endpoint) => `${endpoint.address} . ${port.targetPort}`).sort();
      if (port.publishMode === 'host' || service.endpointMode === 'local') {
        rules.push({ protocol, published: port.publishedPort, targets: localTargets });
        continue;
      }
      const remoteTargets = remote.map((endpoint) => (routable(endpoint) && (routed === undefined || routed.has(endpoint.address)) ? `${endpoint.address} . ${port.targetPort}` : `${endpoint.nodeAddr} . ${port.publishedPort}`)).sort();
      for (const endpoint of live) if (endpoint.nodeAddr === localAddr && isIpv4(endpoint.address)) backends[protocol].add(`${endpoint.address} . ${port.targetPort}`);
      // A hop was sent by a host whose view still counted a task here as ready (views reach hosts
      // a few milliseconds apart, e.g. at a blue/green switch): with no ready task here, any live
      // one serves it rather than refusing the client.
      const liveLocal = view.endpoints
        .filter((endpoint) => endpoint.taskId !== '' && endpoint.serviceId === service.serviceId && endpoint.nodeAddr === localAddr && endpoint.address !== '')
        .map((endpoint) => `${endpoint.address} . ${port.targetPort}`)
        .sort();
      rules.push({ protocol, published: port.publishedPort, targets: [...localTargets, ...remoteTargets], hopTargets: localTargets.length > 0 ? localTargets : liveLocal });
    }
  }
  rules.sort((a, b) => a.published - b.published || compareText(a.protocol, b.protocol));
  return {
    nodes: [...nodes].sort(),
    rules,
    routes: [...routes].map(([address, via]) => ({ address, via })).sort((a, b) => compareText(a.address, b.address)),
    backends: { tcp: [...backends.tcp].sort(), udp: [...backends.udp].sort() },
  };
}

function dnat(targets: readonly string[]): string {
  if (targets.length === 1) return `dnat ip to ${targets[0]?.replace(' . ', ':') ?? ''}`;
  return `dnat ip to numgen random mod ${targets.length} map { ${targets.map((target, index) => `${index} : ${target}`).join(', ')} }`;
}

/** Rules of one published port in a nat chain (prerouting or output). */
function natLines(rule: PublishedRule): string[] {
  const match = `fib daddr type local ${rule.protocol} dport ${rule.published}`;
  const lines: string[] = [];
  if (rule.hopTargets !== undefined) {
    // A hop from another node: this host's tasks only, or nothing (never a third host).
    lines.push(rule.hopTargets.length === 0 ? `    ip saddr @nodes ${match} return` : `    ip saddr @nodes ${match} ct mark set ${MESH_MARK} ${dnat(rule.hopTargets)}`);
  }
  if (rule.targets.length > 0) lines.push(`    ${match} ct mark set ${MESH_MARK} ${dnat(rule.targets)}`);
  return lines;
}

/** The `nft -f` script making the host's table exactly `plan`; `hostBridge` is the containers' bridge. */
export function ingressScript(plan: IngressPlan, hostBridge: string): string {
  for (const address of plan.nodes) assertIpv4(address);
  for (const rule of plan.rules) for (const target of [...rule.targets, ...(rule.hopTargets ?? [])]) assertTarget(target);
  for (const target of [...plan.backends.tcp, ...plan.backends.udp]) assertTarget(target);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(hostBridge)) throw new Error(`cannot write ingress rules: bridge name ${JSON.stringify(hostBridge)} is not an interface name`);
  const nat = plan.rules.flatMap(natLines);
  return [
    `add table ip ${INGRESS_TABLE}`,
    `delete table ip ${INGRESS_TABLE}`,
    `table ip ${INGRESS_TABLE} {`,
    '  set nodes {',
    '    type ipv4_addr',
    ...(plan.nodes.length > 0 ? [`    elements = { ${plan.nodes.join(', ')} }`] : []),
    '  }',
    ...(['tcp', 'udp'] as const).flatMap((protocol) => [
      `  set ${protocol}_backends {`,
      '    type ipv4_addr . inet_service',
      ...(plan.backends[protocol].length > 0 ? [`    elements = { ${plan.backends[protocol].join(', ')} }`] : []),
      '  }',
    ]),
    '  chain prerouting {',
    '    type nat hook prerouting priority -100; policy accept;',
    ...nat,
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    ...nat,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority 100; policy accept;',
    // Sent on to another node (to a task there, or through its host): that node must answer here.
    `    ct mark ${MESH_MARK} oifname != "${hostBridge}" masquerade`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    `    ct mark ${MESH_MARK} accept`,
    // Another node picked one of this host's tasks: through to it, and its answers back.
    `    ip saddr @nodes oifname "${hostBridge}" ip daddr . tcp dport @tcp_backends ct mark set ${MESH_MARK} accept`,
    `    ip saddr @nodes oifname "${hostBridge}" ip daddr . udp dport @udp_backends ct mark set ${MESH_MARK} accept`,
    `    iifname "${hostBridge}" drop`,
    `    oifname "${hostBridge}" drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * The UDP (published port, target address) pairs of `before` that `after` no longer sends to:
 * their conntrack entries must go, or datagrams of a flow that started before keep going to a
 * target that left (TCP connections in flight finish where they are; new ones are balanced anew).
 */
export function removedUdpTargets(before: IngressPlan | undefined, after: IngressPlan | undefined): Array<{ published: number; address: string }> {
  const pairs = (plan: IngressPlan | undefined): Set<string> =>
    new Set((plan?.rules ?? []).filter((rule) => rule.protocol === 'udp').flatMap((rule) => [...rule.targets, ...(rule.hopTargets ?? [])].map((target) => `${rule.published}>${target.split(' . ')[0] ?? ''}`)));
  const kept = pairs(after);
  return [...pairs(before)]
    .filter((pair) => !kept.has(pair))
    .sort()
    .map((pair) => {
      const [published, address] = pair.split('>');
      return { published: Number(published), address: address ?? '' };
    });
}

export function ingressRemoveScript(): string {
  return `add table ip ${INGRESS_TABLE}\ndelete table ip ${INGRESS_TABLE}\n`;
}

function isIpv4(address: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(address);
}

function assertIpv4(address: string): void {
  if (!isIpv4(address)) throw new Error(`cannot write ingress rules: ${JSON.stringify(address)} is not an IPv4 address`);
}

function assertTarget(target: string): void {
  const [address, port] = target.split(' . ');
  assertIpv4(address ?? '');
  if (!/^\d{1,5}$/.test(port ?? '')) throw new Error(`cannot write ingress rules: ${JSON.stringify(target)} has no port`);
}
