/**
 * What each node needs to know about the overlay networks its tasks are on (issue #8): an index
 * of live tasks and services by network, kept up to date from store commits, and the pure
 * computation of one network's view (the network, every endpoint on it in the cluster, the
 * services on it). The dispatcher owns one index for all sessions; a commit costs O(its events),
 * and a flush recomputes each changed network once, whatever the number of sessions.
 */
import type { NetworkEndpoint, NetworkServiceView, NetworkView } from '../../proto/skiff/v1/dispatcher.js';
import type { Service, Task } from '../../proto/skiff/v1/objects.js';
import { servesTraffic } from '../orchestrator/updater.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import type { StoreReader } from '../store/store.js';
import type { StoreEvent } from '../store/tables.js';
import { INGRESS_VIEW_ID, ingressView, publishesPorts } from './ingress-view.js';
import { underlayIp } from '../../common/address.js';

/** What a live task contributes to the index. */
interface TaskEntry {
  nodeId: string;
  networks: string[];
}

/** Networks and nodes whose views may have changed. */
export interface NetworkChanges {
  networks: Set<string>;
  nodes: Set<string>;
}

export function emptyChanges(): NetworkChanges {
  return { networks: new Set(), nodes: new Set() };
}

/**
 * A task is an endpoint on its networks from the moment it has a node until it is terminal: a
 * starting task needs forwarding entries on the other hosts before it runs. A task the agent
 * still runs while it shuts down stays (not ready) until the agent reports it stopped.
 */
export function isEndpointTask(task: Task): boolean {
  return task.nodeId !== '' && !isTerminal(task.status?.state ?? TaskState.TASK_STATE_NEW) && task.networks.length > 0;
}

/** The overlay networks of a task that carry an address (the host bridge attachment is not one). */
function overlayNetworks(task: Task, reader: Pick<StoreReader, 'get'>): string[] {
  return task.networks.filter((attachment) => attachment.addresses.length > 0 && reader.get('network', attachment.network) !== undefined).map((attachment) => attachment.network);
}

function serviceNetworks(service: Service): string[] {
  return [...new Set([...(service.spec?.taskTemplate?.networks ?? []), ...(service.endpoint?.virtualIps ?? []).map((vip) => vip.networkId)])];
}

export class NetworkIndex {
  private readonly tasks = new Map<string, TaskEntry>();
  private readonly tasksByNetwork = new Map<string, Set<string>>();
  /** nodeId -> networkId -> live tasks of that node on it. */
  private readonly nodeNetworks = new Map<string, Map<string, number>>();
  private readonly serviceNetworks = new Map<string, string[]>();
  private readonly servicesByNetwork = new Map<string, Set<string>>();
  /** The routing mesh (ingress-view.ts): services that publish ports, and their live tasks. */
  private readonly publishing = new Set<string>();
  private readonly publishingTasks = new Map<string, Set<string>>();

  constructor(private readonly reader: StoreReader) {
    for (const service of reader.list('service')) {
      this.serviceChanged(service, emptyChanges());
      if (publishesPorts(service)) this.publishing.add(service.meta?.id ?? '');
    }
    for (const serviceId of this.publishing) this.publishingTasks.set(serviceId, new Set());
    for (const task of reader.list('task')) if (task.nodeId !== '' && !isTerminal(task.status?.state ?? TaskState.TASK_STATE_NEW)) this.publishingTasks.get(task.serviceId)?.add(task.meta?.id ?? '');
    for (const task of reader.list('task')) this.taskChanged(task, emptyChanges());
  }

  /** Folds one committed event into the index and records what it may have changed. */
  apply(event: StoreEvent, changes: NetworkChanges): void {
    this.applyIngress(event, changes);
    switch (event.kind) {
      case 'task':
        if (event.action === 'remove') this.taskRemoved(event.object.meta?.id ?? '', changes);
        else this.taskChanged(event.object, changes);
        break;
      case 'service':
        if (event.action === 'remove') this.serviceRemoved(event.object.meta?.id ?? '', changes);
        else this.serviceChanged(event.object, changes);
        break;
      case 'network':
        changes.networks.add(event.object.meta?.id ?? '');
        for (const [nodeId, networks] of this.nodeNetworks) if (networks.has(event.object.meta?.id ?? '')) changes.nodes.add(nodeId);
        break;
      case 'node':
        // The underlay address lives on the node: every network with an endpoint there changes.
        for (const networkId of this.nodeNetworks.get(event.object.meta?.id ?? '')?.keys() ?? []) changes.networks.add(networkId);
        break;
      default:
        break;
    }
  }

  /** Networks `nodeId` has live tasks on (that still exist). */
  networksOfNode(nodeId: string): string[] {
    const networks = [...(this.nodeNetworks.get(nodeId)?.keys() ?? [])].filter((networkId) => this.reader.get('network', networkId) !== undefined);
    return this.publishing.size > 0 ? [...networks, INGRESS_VIEW_ID] : networks;
  }

  /** Nodes with live tasks on `networkId`. */
  nodesOfNetwork(networkId: string): Set<string> {
    if (networkId === INGRESS_VIEW_ID) return new Set(this.publishing.size > 0 ? this.reader.list('node').map((node) => node.meta?.id ?? '') : []);
    const nodes = new Set<string>();
    for (const taskId of this.tasksByNetwork.get(networkId) ?? []) {
      const entry = this.tasks.get(taskId);
      if (entry !== undefined) nodes.add(entry.nodeId);
    }
    return nodes;
  }

  /** The view of `networkId`, or undefined when the network is gone or not allocated yet. */
  view(networkId: string): NetworkView | undefined {
    if (networkId === INGRESS_VIEW_ID) {
      if (this.publishing.size === 0) return undefined;
      const services = [...this.publishing].map((serviceId) => this.reader.get('service', serviceId)).filter((service) => service !== undefined);
      const tasks = [...this.publishingTasks.values()].flatMap((ids) => [...ids]).map((taskId) => this.reader.get('task', taskId)).filter((task) => task !== undefined);
      return ingressView(this.reader, services, tasks);
    }
    const tasks = [...(this.tasksByNetwork.get(networkId) ?? [])].map((taskId) => this.reader.get('task', taskId)).filter((task) => task !== undefined);
    const services = [...(this.servicesByNetwork.get(networkId) ?? [])].map((serviceId) => this.reader.get('service', serviceId)).filter((service) => service !== undefined);
    return networkView(this.reader, networkId, tasks, services);
  }

  /**
   * The ingress view changes with a publishing service or its tasks, and with any node (its
   * address); when the first service starts publishing or the last stops, every node hears.
   */
  private applyIngress(event: StoreEvent, changes: NetworkChanges): void {
    if (event.kind === 'service') {
      const id = event.object.meta?.id ?? '';
      const was = this.publishing.has(id);
      const now = event.action !== 'remove' && publishesPorts(event.object);
      if (!was && !now) return;
      const before = this.publishing.size;
      if (now) this.publishing.add(id);
      else this.publishing.delete(id);
      if (now && !was) {
        const tasks = new Set<string>();
        for (const task of this.reader.list('task')) if (task.serviceId === id && task.nodeId !== '' && !isTerminal(task.status?.state ?? TaskState.TASK_STATE_NEW)) tasks.add(task.meta?.id ?? '');
        this.publishingTasks.set(id, tasks);
      }
      if (!now) this.publishingTasks.delete(id);
      changes.networks.add(INGRESS_VIEW_ID);
      if ((before === 0) !== (this.publishing.size === 0)) for (const node of this.reader.list('node')) changes.nodes.add(node.meta?.id ?? '');
    } else if (event.kind === 'task') {
      const tasks = this.publishingTasks.get(event.object.serviceId);
      if (tasks === undefined) return;
      const id = event.object.meta?.id ?? '';
      const live = event.action !== 'remove' && event.object.nodeId !== '' && !isTerminal(event.object.status?.state ?? TaskState.TASK_STATE_NEW);
      if (!live && !tasks.has(id)) return;
      if (live) tasks.add(id);
      else tasks.delete(id);
      changes.networks.add(INGRESS_VIEW_ID);
    } else if (event.kind === 'node' && this.publishing.size > 0) {
      changes.networks.add(INGRESS_VIEW_ID);
      changes.nodes.add(event.object.meta?.id ?? '');
    }
  }

  private taskChanged(task: Task, changes: NetworkChanges): void {
    const id = task.meta?.id ?? '';
    const entry = isEndpointTask(task) ? { nodeId: task.nodeId, networks: overlayNetworks(task, this.reader) } : undefined;
    const before = this.tasks.get(id);
    if (before === undefined && (entry === undefined || entry.networks.length === 0)) return;
    this.taskRemoved(id, changes);
    if (entry === undefined || entry.networks.length === 0) return;
    this.tasks.set(id, entry);
    const counts = this.nodeNetworks.get(entry.nodeId) ?? new Map<string, number>();
    this.nodeNetworks.set(entry.nodeId, counts);
    for (const networkId of entry.networks) {
      const members = this.tasksByNetwork.get(networkId) ?? new Set<string>();
      this.tasksByNetwork.set(networkId, members.add(id));
      counts.set(networkId, (counts.get(networkId) ?? 0) + 1);
      changes.networks.add(networkId);
    }
    changes.nodes.add(entry.nodeId);
  }

  private taskRemoved(id: string, changes: NetworkChanges): void {
    const entry = this.tasks.get(id);
    if (entry === undefined) return;
    this.tasks.delete(id);
    const counts = this.nodeNetworks.get(entry.nodeId);
    for (const networkId of entry.networks) {
      this.tasksByNetwork.get(networkId)?.delete(id);
      if (this.tasksByNetwork.get(networkId)?.size === 0) this.tasksByNetwork.delete(networkId);
      const left = (counts?.get(networkId) ?? 1) - 1;
      if (left > 0) counts?.set(networkId, left);
      else counts?.delete(networkId);
      changes.networks.add(networkId);
    }
    if (counts?.size === 0) this.nodeNetworks.delete(entry.nodeId);
    changes.nodes.add(entry.nodeId);
  }

  private serviceChanged(service: Service, changes: NetworkChanges): void {
    const id = service.meta?.id ?? '';
    this.serviceRemoved(id, changes);
    const networks = serviceNetworks(service);
    this.serviceNetworks.set(id, networks);
    for (const networkId of networks) {
      const members = this.servicesByNetwork.get(networkId) ?? new Set<string>();
      this.servicesByNetwork.set(networkId, members.add(id));
      changes.networks.add(networkId);
    }
  }

  private serviceRemoved(id: string, changes: NetworkChanges): void {
    for (const networkId of this.serviceNetworks.get(id) ?? []) {
      this.servicesByNetwork.get(networkId)?.delete(id);
      if (this.servicesByNetwork.get(networkId)?.size === 0) this.servicesByNetwork.delete(networkId);
      changes.networks.add(networkId);
    }
    this.serviceNetworks.delete(id);
  }
}

/** The IP part of a node's address (`ip` or `ip:port`). */

/** A task's name in DNS: NAME.SLOT, or NAME.NODEID for a global service's task. */
export function endpointTaskName(task: Task): string {
  return `${task.serviceName}.${task.slot === 0 ? task.nodeId : task.slot}`;
}

/**
 * Pure: the view of `networkId` from the given live tasks and services on it. Endpoints whose
 * node has no known address yet are left out (no host could reach them); order is by task id so
 * equal inputs give equal views.
 */
export function networkView(reader: Pick<StoreReader, 'get'>, networkId: string, tasks: readonly Task[], services: readonly Service[]): NetworkView | undefined {
  const network = reader.get('network', networkId);
  if (network?.allocation === undefined) return undefined;
  const endpoints: NetworkEndpoint[] = [];
  for (const task of [...tasks].sort((a, b) => (a.meta?.id ?? '').localeCompare(b.meta?.id ?? ''))) {
    if (!isEndpointTask(task)) continue;
    const address = task.networks.find((attachment) => attachment.network === networkId)?.addresses[0];
    const nodeAddr = underlayIp(reader.get('node', task.nodeId)?.status?.addr ?? '');
    if (address === undefined || nodeAddr === '') continue;
    endpoints.push({
      taskId: task.meta?.id ?? '',
      taskName: endpointTaskName(task),
      serviceId: task.serviceId,
      address,
      nodeId: task.nodeId,
      nodeAddr,
      // Blue/green: only the active color serves.
      ready: task.status?.state === TaskState.TASK_STATE_RUNNING && task.desiredState <= TaskState.TASK_STATE_RUNNING && servesTraffic(reader.get('service', task.serviceId), task),
    });
  }
  const serviceViews: NetworkServiceView[] = [...services]
    .filter((service) => (service.spec?.taskTemplate?.networks ?? []).includes(networkId))
    .sort((a, b) => (a.meta?.id ?? '').localeCompare(b.meta?.id ?? ''))
    .map((service) => {
      const mode = service.spec?.endpoint?.mode || 'vip';
      return {
        serviceId: service.meta?.id ?? '',
        name: service.spec?.name ?? '',
        vip: mode === 'vip' ? (service.endpoint?.virtualIps.find((vip) => vip.networkId === networkId)?.addr ?? '') : '',
        endpointMode: mode,
        ports: service.endpoint?.ports ?? [],
        aliases: service.spec?.taskTemplate?.networkAliases.find((entry) => entry.network === networkId)?.aliases ?? [],
      };
    });
  return { network, endpoints, services: serviceViews };
}
