/**
 * The overlay data path as `ip`/`bridge` batch lines (pure): per network per host a Linux bridge
 * `skb<vni>` without an address (the host never routes between networks: that is the isolation)
 * and a VXLAN device `skx<vni>` enslaved to it, with no learning and no multicast: each remote
 * endpoint gets a permanent FDB entry (its MAC -> its host's underlay IP) and a permanent
 * neighbour entry (its IP -> its MAC), and the VXLAN device answers ARP from those (`proxy`).
 * MACs are derived from the address (02:42:<4 address bytes>) so no host has to learn another's.
 */
import { createHash } from 'node:crypto';
import type { NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import { parseAddress } from '../subnet.js';

/** The IANA VXLAN port. */
export const VXLAN_PORT = 4789;
/** Underlay MTU 1500 minus the VXLAN encapsulation (50 bytes). */
export const OVERLAY_MTU = 1450;
/** Names of the devices this module owns; anything else on the host is never touched. */
export const BRIDGE_PATTERN = /^skb(\d+)$/;
export const VXLAN_PATTERN = /^skx(\d+)$/;
/** Largest VXLAN network identifier (24 bits). */
export const MAX_VNI = 0xffffff;

export function bridgeName(vni: number): string {
  assertVni(vni);
  return `skb${vni}`;
}

export function vxlanName(vni: number): string {
  assertVni(vni);
  return `skx${vni}`;
}

function assertVni(vni: number): void {
  if (!Number.isInteger(vni) || vni < 1 || vni > MAX_VNI) throw new Error(`cannot name overlay devices: VNI ${vni} is not in 1..${MAX_VNI}`);
}

/** The MAC of an overlay address (`10.0.1.7` or `10.0.1.7/24`): 02:42 then the 4 address bytes. */
export function macForAddress(address: string): string {
  const value = parseAddress(address.split('/')[0] ?? '');
  const bytes = [0x02, 0x42, value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
  return bytes.map((byte) => byte.toString(16).padStart(2, '0')).join(':');
}

/** Host-side veth name of a container's interface on one network: stable, 15 characters at most. */
export function overlayVethName(containerId: string, networkId: string): string {
  return `sv${createHash('sha256').update(`${containerId}/${networkId}`).digest('hex').slice(0, 12)}`;
}

/** One remote endpoint as programmed on the VXLAN device. */
export interface RemoteEntry {
  /** Bare IPv4 address. */
  address: string;
  mac: string;
  /** Underlay IP of the endpoint's host. */
  nodeAddr: string;
}

/** The remote endpoints of a view: those on other hosts (local ones sit on the bridge itself). */
export function remoteEntries(view: NetworkView, localAddr: string): Map<string, RemoteEntry> {
  const entries = new Map<string, RemoteEntry>();
  for (const endpoint of view.endpoints) {
    if (endpoint.nodeAddr === localAddr || endpoint.nodeAddr === '') continue;
    const address = endpoint.address.split('/')[0] ?? '';
    entries.set(address, { address, mac: macForAddress(address), nodeAddr: endpoint.nodeAddr });
  }
  return entries;
}

/** Lines that create (idempotently, with `add` tolerated to fail on existence) the network's devices. */
export function ensureDeviceLines(vni: number, localAddr: string): string[][] {
  const bridge = bridgeName(vni);
  const vxlan = vxlanName(vni);
  return [
    ['link', 'add', 'name', bridge, 'mtu', String(OVERLAY_MTU), 'type', 'bridge'],
    ['link', 'add', 'name', vxlan, 'mtu', String(OVERLAY_MTU), 'type', 'vxlan', 'id', String(vni), 'dstport', String(VXLAN_PORT), 'local', localAddr, 'nolearning', 'proxy'],
  ];
}

/** Lines (run after ensureDeviceLines) that wire the devices and bring them up. */
export function wireDeviceLines(vni: number): string[] {
  const bridge = bridgeName(vni);
  const vxlan = vxlanName(vni);
  return [`link set dev ${vxlan} master ${bridge}`, `link set dev ${vxlan} up`, `link set dev ${bridge} up`];
}

/**
 * `bridge -batch` and `ip -batch` lines taking the VXLAN device from `current` to `desired`
 * entries: replaced where new or moved, deleted where gone.
 */
export function entryLines(vni: number, current: ReadonlyMap<string, RemoteEntry>, desired: ReadonlyMap<string, RemoteEntry>): { fdb: string[]; neigh: string[] } {
  const vxlan = vxlanName(vni);
  const fdb: string[] = [];
  const neigh: string[] = [];
  for (const [address, entry] of desired) {
    const before = current.get(address);
    if (before !== undefined && before.mac === entry.mac && before.nodeAddr === entry.nodeAddr) continue;
    fdb.push(`fdb replace ${entry.mac} dev ${vxlan} dst ${entry.nodeAddr} self permanent`);
    neigh.push(`neigh replace ${address} lladdr ${entry.mac} dev ${vxlan} nud permanent`);
  }
  for (const [address, entry] of current) {
    if (desired.has(address)) continue;
    fdb.push(`fdb del ${entry.mac} dev ${vxlan} self`);
    neigh.push(`neigh del ${address} dev ${vxlan}`);
  }
  return { fdb, neigh };
}

/** Host-side lines plugging a container into the network's bridge (peer created in its netns). */
export function containerHostLines(vni: number, veth: string, innerName: string, pid: number): string[] {
  return [
    `link add name ${veth} mtu ${OVERLAY_MTU} type veth peer name ${innerName} mtu ${OVERLAY_MTU} netns ${pid}`,
    `link set dev ${veth} master ${bridgeName(vni)} up`,
  ];
}

/** Lines run inside the container's netns: the address, the derived MAC, and up (the subnet route comes with the address). */
export function containerInnerLines(innerName: string, address: string): string[] {
  return [`link set dev ${innerName} address ${macForAddress(address)}`, `addr add ${address} dev ${innerName}`, `link set dev ${innerName} up`];
}
