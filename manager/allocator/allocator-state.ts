/**
 * What is allocated, as the leader's allocator sees it: network subnets and VNIs, host addresses
 * per network (task addresses and service VIPs), and ingress published ports. Built from the
 * store at start and kept current from commits; a reconcile run adds tentative holdings for the
 * owners it allocates for, which the commit of its transaction then confirms (or, if that
 * transaction fails, the retry replaces).
 */
import type { Network, Service, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import { addressAt, type Cidr, nextFreeOffset, nextFreeSubnet, offsetOf, parseCidr } from './ipam.js';

/** VXLAN ids handed to networks start here (Swarm's convention; below are left to the host). */
export const FIRST_VNI = 4096;
export const LAST_VNI = 16_777_215;
/** Published ports chosen automatically come from this range (Swarm's and Kubernetes' NodePort range). */
export const DYNAMIC_PORT_FIRST = 30000;
export const DYNAMIC_PORT_LAST = 32767;

export const DEFAULT_ADDRESS_POOL = '10.0.0.0/8';
export const DEFAULT_SUBNET_SIZE = 24;

interface NetworkState {
  subnet: Cidr;
  /** Host offset -> owner key (`task:<id>` or `service:<id>`). */
  used: Map<number, string>;
  /** Where the next search starts: just after the last address handed out. */
  cursor: number;
}

interface Holding {
  addresses: Array<{ networkId: string; offset: number }>;
  ports: string[];
}

/** `tcp/8080` */
export function portKey(protocol: string, port: number): string {
  return `${protocol === '' ? 'tcp' : protocol}/${port}`;
}

/** A task gives its addresses back once it has stopped for good (or never reached a node and is not wanted). */
export function taskReleased(task: Task): boolean {
  if (task.desiredState <= TaskState.TASK_STATE_RUNNING) return false;
  return isTerminal(task.status?.state ?? TaskState.TASK_STATE_NEW) || task.nodeId === '';
}

export class AllocatorState {
  private readonly networks = new Map<string, NetworkState>();
  private readonly vnis = new Map<number, string>();
  private readonly ports = new Map<string, string>();
  private readonly holdings = new Map<string, Holding>();

  /** Subnets of allocated networks, for picking a new one. */
  subnets(): Cidr[] {
    return [...this.networks.values()].map((network) => network.subnet);
  }

  isAllocated(networkId: string): boolean {
    return this.networks.has(networkId);
  }

  networkAdded(network: Network): void {
    const id = network.meta?.id ?? '';
    const allocation = network.allocation;
    if (allocation === undefined || this.networks.has(id)) return;
    this.networks.set(id, { subnet: parseCidr(allocation.subnet), used: new Map(), cursor: 0 });
    this.vnis.set(allocation.vni, id);
    // Owners that were recorded before their network was (a rebuild in any order) are re-applied by the caller.
  }

  networkRemoved(network: Network): void {
    const id = network.meta?.id ?? '';
    this.networks.delete(id);
    if (network.allocation !== undefined && this.vnis.get(network.allocation.vni) === id) this.vnis.delete(network.allocation.vni);
  }

  /** Records what a committed task holds (nothing once released). */
  taskChanged(task: Task): void {
    const owner = `task:${task.meta?.id ?? ''}`;
    const addresses = taskReleased(task) ? [] : task.networks.flatMap((attachment) => attachment.addresses.map((address) => ({ networkId: attachment.network, address })));
    // Most task changes are status reports of tasks with no overlay address: nothing to redo.
    if (addresses.length === 0 && !this.holdings.has(owner)) return;
    this.release(owner);
    this.hold(owner, addresses, []);
  }

  taskRemoved(task: Task): void {
    this.release(`task:${task.meta?.id ?? ''}`);
  }

  serviceChanged(service: Service): void {
    const owner = `service:${service.meta?.id ?? ''}`;
    this.release(owner);
    const endpoint = service.endpoint;
    if (endpoint === undefined) return;
    const addresses = endpoint.virtualIps.map((vip) => ({ networkId: vip.networkId, address: vip.addr }));
    const ports = endpoint.ports.filter((port) => port.publishMode !== 'host' && port.publishedPort > 0).map((port) => portKey(port.protocol, port.publishedPort));
    this.hold(owner, addresses, ports);
  }

  serviceRemoved(service: Service): void {
    this.release(`service:${service.meta?.id ?? ''}`);
  }

  /** Which service holds an ingress published port, if any. */
  portOwner(protocol: string, port: number): string | undefined {
    return this.ports.get(portKey(protocol, port))?.replace(/^service:/, '');
  }

  /** Next free VNI, or undefined when all 16 million are taken. */
  nextVni(): number | undefined {
    for (let vni = FIRST_VNI; vni <= LAST_VNI; vni += 1) if (!this.vnis.has(vni)) return vni;
    return undefined;
  }

  /** Next free subnet of the pool, avoiding allocated networks and `alsoAvoid` (requested subnets not yet allocated). */
  nextSubnet(pool: Cidr, size: number, alsoAvoid: readonly Cidr[]): Cidr | undefined {
    return nextFreeSubnet(pool, size, [...this.subnets(), ...alsoAvoid]);
  }

  /**
   * A free address in `networkId` for `owner` (tentatively held until the owner's next
   * commit), in CIDR form; undefined when the network is unknown, unallocated or full.
   */
  takeAddress(networkId: string, owner: string): string | undefined {
    const network = this.networks.get(networkId);
    if (network === undefined) return undefined;
    const offset = nextFreeOffset(network.subnet, new Set(network.used.keys()), network.cursor);
    if (offset === undefined) return undefined;
    network.used.set(offset, owner);
    network.cursor = offset + 1;
    const holding = this.holdings.get(owner) ?? { addresses: [], ports: [] };
    holding.addresses.push({ networkId, offset });
    this.holdings.set(owner, holding);
    return addressAt(network.subnet, offset);
  }

  /** Holds a published port for `owner` (`service:<id>`); false when someone else has it. */
  takePort(protocol: string, port: number, owner: string): boolean {
    const key = portKey(protocol, port);
    const holder = this.ports.get(key);
    if (holder !== undefined && holder !== owner) return false;
    this.ports.set(key, owner);
    const holding = this.holdings.get(owner) ?? { addresses: [], ports: [] };
    if (!holding.ports.includes(key)) holding.ports.push(key);
    this.holdings.set(owner, holding);
    return true;
  }

  /** A free port of the dynamic range, or undefined when all are taken. */
  nextDynamicPort(protocol: string): number | undefined {
    for (let port = DYNAMIC_PORT_FIRST; port <= DYNAMIC_PORT_LAST; port += 1) if (!this.ports.has(portKey(protocol, port))) return port;
    return undefined;
  }

  /** Drops everything `owner` holds (before re-deriving it from its newest version). */
  release(owner: string): void {
    const holding = this.holdings.get(owner);
    if (holding === undefined) return;
    for (const { networkId, offset } of holding.addresses) {
      const network = this.networks.get(networkId);
      if (network?.used.get(offset) === owner) network.used.delete(offset);
    }
    for (const key of holding.ports) if (this.ports.get(key) === owner) this.ports.delete(key);
    this.holdings.delete(owner);
  }

  private hold(owner: string, addresses: Array<{ networkId: string; address: string }>, ports: string[]): void {
    const holding: Holding = { addresses: [], ports: [] };
    for (const { networkId, address } of addresses) {
      const network = this.networks.get(networkId);
      if (network === undefined) continue;
      const offset = offsetOf(network.subnet, address);
      if (offset === undefined) continue;
      network.used.set(offset, owner);
      holding.addresses.push({ networkId, offset });
    }
    for (const key of ports) {
      this.ports.set(key, owner);
      holding.ports.push(key);
    }
    // An owner that holds nothing is not kept: 100,000 tasks without networks were as many empty entries.
    if (holding.addresses.length > 0 || holding.ports.length > 0) this.holdings.set(owner, holding);
  }
}
