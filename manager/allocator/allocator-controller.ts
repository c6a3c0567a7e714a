/**
 * The allocator (leader only): gives each network a subnet of the cluster's address pool and a
 * VXLAN id, each service a VIP on each of its networks and its ingress published ports (an
 * automatic one from 30000-32767 when none is given), and each new task an address on each of
 * its networks before the scheduler places it. Everything lives in the store; what a removed
 * network, service or stopped task held becomes free again.
 */
import type { Network, Service, Task } from '../../proto/skiff/v1/objects.js';
import type { PortConfig } from '../../proto/skiff/v1/specs.js';
import { HealthState, TaskState } from '../../proto/skiff/v1/types.js';
import type { StoreReader, WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';
import { remainingBudget, type Controller } from '../orchestrator/controller-loop.js';
import { AllocatorState, DEFAULT_ADDRESS_POOL, DEFAULT_SUBNET_SIZE, taskReleased } from './allocator-state.js';
import { type Cidr, CidrError, formatCidr, formatIpv4, GATEWAY_OFFSET, overlaps, parseCidr } from './ipam.js';
import { taskAllocated, taskNetworks } from './task-networks.js';

const EVERYTHING = '*';


function needsTaskAllocation(task: Task): boolean {
  const state = task.status?.state ?? TaskState.TASK_STATE_NEW;
  return task.nodeId === '' && task.desiredState <= TaskState.TASK_STATE_RUNNING && state <= TaskState.TASK_STATE_PENDING && !taskAllocated(task);
}

/** The cluster's pool and subnet size, with defaults; a bad stored value falls back to the default. */
function addressPool(reader: StoreReader): { pool: Cidr; size: number } {
  const spec = reader.list('cluster')[0]?.spec;
  let pool: Cidr;
  try {
    pool = parseCidr(spec?.defaultAddressPool || DEFAULT_ADDRESS_POOL);
  } catch {
    pool = parseCidr(DEFAULT_ADDRESS_POOL);
  }
  const size = spec?.defaultSubnetSize || DEFAULT_SUBNET_SIZE;
  return { pool, size: Math.max(size, pool.prefix) };
}

export function allocatorController(): Controller & { readonly state: () => AllocatorState } {
  let state = new AllocatorState();
  const apply = (commit: StoreCommit): void => {
    for (const event of commit.events) {
      if (event.kind === 'network') {
        if (event.action === 'remove') state.networkRemoved(event.object);
        else state.networkAdded(event.object);
      } else if (event.kind === 'service') {
        if (event.action === 'remove') state.serviceRemoved(event.object);
        else state.serviceChanged(event.object);
      } else if (event.kind === 'task') {
        if (event.action === 'remove') state.taskRemoved(event.object);
        else state.taskChanged(event.object);
      }
    }
  };
  return {
    name: 'allocator',
    state: () => state,
    *dirtyKeys(commit: StoreCommit) {
      apply(commit);
      for (const event of commit.events) {
        if (event.action === 'remove') continue;
        if (event.kind === 'network') yield event.object.allocation === undefined ? `network:${event.object.meta?.id ?? ''}` : EVERYTHING;
        else if (event.kind === 'service') yield `service:${event.object.meta?.id ?? ''}`;
        else if (event.kind === 'task' && needsTaskAllocation(event.object)) yield `task:${event.object.meta?.id ?? ''}`;
        else if (event.kind === 'task' && taskReleased(event.object) && taskNetworks(event.object).length > 0) yield 'waiting';
      }
    },
    allKeys(reader: StoreReader) {
      state = new AllocatorState();
      // Networks first: addresses are recorded against allocated networks.
      for (const network of reader.list('network')) state.networkAdded(network);
      for (const service of reader.list('service')) state.serviceChanged(service);
      for (const task of reader.list('task')) state.taskChanged(task);
      return [EVERYTHING];
    },
    reconcile(keys, transaction: WriteTransaction, reader: StoreReader) {
      const everything = keys.has(EVERYTHING) || keys.has('waiting');
      const networks = everything ? reader.list('network') : [...keys].filter((key) => key.startsWith('network:')).map((key) => reader.get('network', key.slice(8))).filter((network) => network !== undefined);
      for (const network of networks) {
        if (remainingBudget(transaction) === 0) return 0;
        if (network.allocation === undefined) allocateNetwork(network, state, transaction, reader);
      }
      const services = everything ? reader.list('service') : [...keys].filter((key) => key.startsWith('service:')).map((key) => reader.get('service', key.slice(8))).filter((service) => service !== undefined);
      for (const service of services) {
        if (remainingBudget(transaction) === 0) return 0;
        allocateService(service, state, transaction, reader);
      }
      const tasks = everything ? reader.list('task') : [...keys].filter((key) => key.startsWith('task:')).map((key) => reader.get('task', key.slice(5))).filter((task) => task !== undefined);
      for (const task of tasks) {
        if (remainingBudget(transaction) === 0) return 0;
        if (needsTaskAllocation(task)) allocateTask(task, state, transaction);
      }
      return undefined;
    },
  };
}

function allocateNetwork(network: Network, state: AllocatorState, transaction: WriteTransaction, reader: StoreReader): void {
  const { pool, size } = addressPool(reader);
  const requested = network.spec?.subnet ?? '';
  let subnet: Cidr | undefined;
  if (requested !== '') {
    try {
      subnet = parseCidr(requested);
    } catch (error) {
      if (error instanceof CidrError) return; // refused by the API; an old object keeps waiting
      throw error;
    }
    const wanted = subnet;
    if (state.subnets().some((taken) => overlaps(taken, wanted))) return;
  } else {
    // Subnets users asked for on networks not yet allocated are avoided too.
    const requestedElsewhere = reader
      .list('network')
      .filter((other) => other.allocation === undefined && (other.spec?.subnet ?? '') !== '' && other.meta?.id !== network.meta?.id)
      .flatMap((other) => {
        try {
          return [parseCidr(other.spec?.subnet ?? '')];
        } catch {
          return [];
        }
      });
    subnet = state.nextSubnet(pool, size, requestedElsewhere);
  }
  const vni = state.nextVni();
  if (subnet === undefined || vni === undefined) return;
  const allocated: Network = { ...network, allocation: { subnet: formatCidr(subnet), gateway: formatIpv4(subnet.base + GATEWAY_OFFSET), vni } };
  transaction.update('network', allocated);
  state.networkAdded(allocated);
}

function allocateService(service: Service, state: AllocatorState, transaction: WriteTransaction, reader: StoreReader): void {
  const owner = `service:${service.meta?.id ?? ''}`;
  const spec = service.spec;
  if (spec === undefined) return;
  const networkIds = spec.taskTemplate?.networks ?? [];
  const mode = spec.endpoint?.mode || 'vip';
  // Current holdings are re-derived from what the service records, then topped up.
  const current = service.endpoint;
  const vips = mode === 'vip' ? (current?.virtualIps ?? []).filter((vip) => networkIds.includes(vip.networkId)) : [];
  for (const networkId of networkIds) {
    if (mode !== 'vip' || vips.some((vip) => vip.networkId === networkId)) continue;
    if (!state.isAllocated(networkId) && reader.get('network', networkId) === undefined) continue;
    const address = state.takeAddress(networkId, owner);
    if (address !== undefined) vips.push({ networkId, addr: address });
  }
  const ports: PortConfig[] = [];
  const previous = current?.ports ?? [];
  for (const wanted of spec.endpoint?.ports ?? []) {
    if (wanted.publishMode === 'host') {
      ports.push({ ...wanted });
      continue;
    }
    let published = wanted.publishedPort;
    if (published === 0) {
      // Keep the port chosen before for the same target, so an update does not move it.
      const before = previous.find((port) => port.targetPort === wanted.targetPort && port.protocol === wanted.protocol && port.publishMode !== 'host');
      published = before !== undefined && state.portOwner(wanted.protocol, before.publishedPort) === service.meta?.id ? before.publishedPort : (state.nextDynamicPort(wanted.protocol) ?? 0);
    }
    if (published === 0 || !state.takePort(wanted.protocol, published, owner)) continue;
    ports.push({ ...wanted, publishMode: 'ingress', publishedPort: published });
  }
  const endpoint = { spec: spec.endpoint, ports, virtualIps: vips };
  if (JSON.stringify(endpoint) === JSON.stringify(current ?? { spec: undefined, ports: [], virtualIps: [] })) return;
  transaction.update('service', { ...service, endpoint });
}

function allocateTask(task: Task, state: AllocatorState, transaction: WriteTransaction): void {
  const owner = `task:${task.meta?.id ?? ''}`;
  const attachments = task.networks.filter((attachment) => attachment.addresses.length > 0);
  const missing: string[] = [];
  for (const networkId of taskNetworks(task)) {
    if (attachments.some((attachment) => attachment.network === networkId)) continue;
    const address = state.isAllocated(networkId) ? state.takeAddress(networkId, owner) : undefined;
    if (address === undefined) missing.push(networkId);
    else attachments.push({ network: networkId, addresses: [address] });
  }
  if (missing.length > 0) {
    // Give back what this run took; the task waits for the networks (or for free addresses).
    state.release(owner);
    state.taskChanged(task);
    const reason = `waiting for an address on network ${missing.join(', ')}`;
    if (task.status?.err === reason) return;
    transaction.update('task', { ...task, status: { ...(task.status ?? emptyStatus()), err: reason } });
    return;
  }
  transaction.update('task', { ...task, networks: attachments, status: task.status === undefined ? undefined : { ...task.status, err: '' } });
}

function emptyStatus(): NonNullable<Task['status']> {
  return { state: TaskState.TASK_STATE_NEW, message: '', err: '', timestampMs: 0, exitCode: 0, containerId: '', pid: 0, health: HealthState.HEALTH_STATE_NONE };
}
