// The lab's kernel networking: one bridge in the root netns, and per host a network namespace
// joined to it by a veth. No default route, no NAT, no sysctl changes: lab traffic stays on the
// bridge. Every step is idempotent so `lab up` can finish what an aborted `up` started.
import { readdir } from 'node:fs/promises';
import { NETNS_DIR } from './naming.js';
import { run, runChecked } from './system.js';

/** Destinations of every IPv4 route in the root netns (CIDRs, bare addresses, "default"). */
export async function routeDestinations(): Promise<string[]> {
  const routes = JSON.parse(await runChecked('ip', ['-j', '-4', 'route', 'show', 'table', 'all'], 'list routes')) as Array<{ dst?: unknown }>;
  return routes.map((route) => (typeof route.dst === 'string' ? route.dst : '')).filter((dst) => dst !== '');
}

/** Names of every link in the root netns. */
export async function linkNames(): Promise<string[]> {
  const links = JSON.parse(await runChecked('ip', ['-j', 'link', 'show'], 'list links')) as Array<{ ifname?: unknown }>;
  return links.map((link) => (typeof link.ifname === 'string' ? link.ifname : '')).filter((name) => name !== '');
}

/** Names of every named network namespace (files in /var/run/netns). */
export async function netnsNames(): Promise<string[]> {
  return readdir(NETNS_DIR).catch(() => []);
}

async function linkExists(name: string, netns?: string): Promise<boolean> {
  const args = netns === undefined ? ['link', 'show', 'dev', name] : ['-n', netns, 'link', 'show', 'dev', name];
  return (await run('ip', args)).code === 0;
}

async function hasAddress(device: string, cidr: string, netns?: string): Promise<boolean> {
  const args = [...(netns === undefined ? [] : ['-n', netns]), '-j', '-4', 'addr', 'show', 'dev', device];
  const result = await run('ip', args);
  if (result.code !== 0) return false;
  const [address, prefix] = cidr.split('/');
  const entries = JSON.parse(result.stdout) as Array<{ addr_info?: Array<{ local?: unknown; prefixlen?: unknown }> }>;
  return entries.some((entry) => (entry.addr_info ?? []).some((info) => info.local === address && String(info.prefixlen) === prefix));
}

/** Creates the lab bridge with `cidr` (e.g. 198.18.0.1/24) and brings it up; no-op parts skipped. */
export async function ensureBridge(bridge: string, cidr: string): Promise<void> {
  if (!(await linkExists(bridge))) await runChecked('ip', ['link', 'add', bridge, 'type', 'bridge'], `create bridge ${bridge}`);
  if (!(await hasAddress(bridge, cidr))) await runChecked('ip', ['addr', 'add', cidr, 'dev', bridge], `address bridge ${bridge}`);
  await runChecked('ip', ['link', 'set', bridge, 'up'], `bring up bridge ${bridge}`);
}

/**
 * Creates host `netns` with `eth0` (address `cidr`) on a veth whose other end, `veth`, is enslaved
 * to `bridge`; brings lo and eth0 up. The peer is created inside the namespace directly, so no
 * interface named eth0 ever appears in the root netns.
 */
export async function ensureHostNetwork(options: { netns: string; veth: string; bridge: string; cidr: string }): Promise<void> {
  const { netns, veth, bridge, cidr } = options;
  if (!(await netnsNames()).includes(netns)) await runChecked('ip', ['netns', 'add', netns], `create netns ${netns}`);
  const inside = await linkExists('eth0', netns);
  const outside = await linkExists(veth);
  if (inside !== outside) {
    // Half a pair (an aborted up): start that pair over.
    if (outside) await runChecked('ip', ['link', 'del', veth], `remove stale veth ${veth}`);
    if (inside) await runChecked('ip', ['-n', netns, 'link', 'del', 'eth0'], `remove stale eth0 in ${netns}`);
  }
  if (!(inside && outside)) {
    await runChecked('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns], `create veth ${veth}`);
  }
  await runChecked('ip', ['link', 'set', veth, 'master', bridge], `attach ${veth} to ${bridge}`);
  await runChecked('ip', ['link', 'set', veth, 'up'], `bring up ${veth}`);
  if (!(await hasAddress('eth0', cidr, netns))) await runChecked('ip', ['-n', netns, 'addr', 'add', cidr, 'dev', 'eth0'], `address eth0 in ${netns}`);
  await runChecked('ip', ['-n', netns, 'link', 'set', 'lo', 'up'], `bring up lo in ${netns}`);
  await runChecked('ip', ['-n', netns, 'link', 'set', 'eth0', 'up'], `bring up eth0 in ${netns}`);
}

/** Deletes a named netns if present (its veth end and every link inside go with it). */
export async function deleteNetns(netns: string): Promise<void> {
  if (!(await netnsNames()).includes(netns)) return;
  await runChecked('ip', ['netns', 'delete', netns], `delete netns ${netns}`);
}

/** Deletes a root-netns link if present (one that vanishes meanwhile, say with its netns, is fine). */
export async function deleteLink(name: string): Promise<void> {
  const result = await run('ip', ['link', 'del', name]);
  if (result.code !== 0 && (await linkExists(name))) {
    throw new Error(`cannot delete link ${name}: \`ip link del ${name}\` exited ${result.code}: ${result.stderr.trim()}`);
  }
}
