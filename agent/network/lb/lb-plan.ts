/**
 * VIP load balancing as nftables rules inside one container's network namespace (pure): for each
 * service with a VIP on a network the container is on, a new connection (or UDP flow) to the VIP
 * is DNATed in the nat output hook to one of the service's ready endpoints, picked at random; the
 * port is kept (the VIP answers on every port, as a Swarm VIP does). A VIP with no ready backend
 * is refused at once (TCP reset / ICMP unreachable) rather than left to time out. Conntrack keeps
 * an established connection on its backend; only new connections see the new set.
 *
 * The whole table is replaced in one `nft -f` transaction (`add table; delete table; table {...}`):
 * a change of backends is atomic for the container, and the table name `skiff_lb` is ours alone,
 * so removing it (or the namespace going with the container) leaves nothing behind.
 */
import type { NetworkView } from '../../../proto/skiff/v1/dispatcher.js';

export const LB_TABLE = 'skiff_lb';

/** One VIP and the bare addresses of its ready backends, sorted. */
export interface VipBackends {
  vip: string;
  backends: string[];
}

const bare = (cidr: string): string => cidr.split('/')[0] ?? '';

/**
 * The VIPs a container on `views` balances, with their ready backends. Services in dnsrr mode or
 * without a VIP are left out; a service on two of the container's networks gets both VIPs, each
 * with the backends on that VIP's network.
 */
export function vipBackends(views: readonly NetworkView[]): VipBackends[] {
  const result: VipBackends[] = [];
  for (const view of views) {
    for (const service of view.services) {
      if (service.vip === '' || (service.endpointMode !== '' && service.endpointMode !== 'vip')) continue;
      const backends = view.endpoints.filter((endpoint) => endpoint.serviceId === service.serviceId && endpoint.ready && endpoint.address !== '').map((endpoint) => bare(endpoint.address));
      result.push({ vip: bare(service.vip), backends: [...new Set(backends)].sort() });
    }
  }
  return result.sort((a, b) => (a.vip < b.vip ? -1 : a.vip > b.vip ? 1 : 0));
}

/**
 * The `nft -f` script that makes the container's table exactly `vips` (one transaction).
 *
 * Layout (the cost every packet of the container pays is what matters here): one chain in the nat
 * output hook, which conntrack consults only for the first packet of a flow, never for the packets
 * of an established connection; in it one hash lookup `ip daddr vmap` from VIP to that service's
 * chain (a DNAT to its one backend, a `numgen random` map over several, or a refusal when it has
 * none), so a new connection costs the same with 1 or 500 VIPs. No filter chain: a hook with
 * rules, even empty ones, would run for every packet the container sends.
 */
export function lbScript(vips: readonly VipBackends[]): string {
  const entries: string[] = [];
  const chains: string[] = [];
  for (const { vip, backends } of vips) {
    assertIpv4(vip);
    backends.forEach(assertIpv4);
    const chain = `vip_${vip.replaceAll('.', '_')}`;
    entries.push(`${vip} : goto ${chain}`);
    chains.push(`  chain ${chain} {`);
    if (backends.length === 0) {
      // A refusal at once (TCP reset, ICMP port unreachable) rather than a timeout. Rejected, the
      // packet's flow is never confirmed, so the next attempt is looked up here again.
      chains.push('    meta l4proto tcp reject with tcp reset', '    reject');
    } else if (backends.length === 1) {
      chains.push(`    dnat to ${backends[0] ?? ''}`);
    } else {
      const map = backends.map((backend, index) => `${index} : ${backend}`).join(', ');
      chains.push(`    dnat to numgen random mod ${backends.length} map { ${map} }`);
    }
    chains.push('  }');
  }
  return [
    `add table ip ${LB_TABLE}`,
    `delete table ip ${LB_TABLE}`,
    `table ip ${LB_TABLE} {`,
    '  chain vip_nat {',
    '    type nat hook output priority -100; policy accept;',
    ...(entries.length === 0 ? [] : [`    ip daddr vmap { ${entries.join(', ')} }`]),
    '  }',
    ...chains,
    '}',
    '',
  ].join('\n');
}

/**
 * The (VIP, backend) pairs of `before` no longer in `after`: their UDP conntrack entries must go,
 * or datagrams of a flow that started before keep going to a backend that left the set (TCP
 * entries stay: a connection in flight finishes on its backend, new ones are balanced anew).
 */
export function removedBackends(before: readonly VipBackends[], after: readonly VipBackends[]): Array<{ vip: string; backend: string }> {
  const kept = new Set(after.flatMap(({ vip, backends }) => backends.map((backend) => `${vip}>${backend}`)));
  return before.flatMap(({ vip, backends }) => backends.filter((backend) => !kept.has(`${vip}>${backend}`)).map((backend) => ({ vip, backend })));
}

/** The script that removes the table (when the container leaves every network with a VIP). */
export function lbRemoveScript(): string {
  return `add table ip ${LB_TABLE}\ndelete table ip ${LB_TABLE}\n`;
}

function assertIpv4(address: string): void {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) throw new Error(`cannot balance: ${JSON.stringify(address)} is not an IPv4 address`);
}
