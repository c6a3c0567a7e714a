/**
 * The routing mesh's view (issue #8 part 6), sent to every node as a network with the reserved
 * id `ingress` and no allocation (no VXLAN devices are made for it): the services that publish
 * ports (ingress or host mode), every live task of them with its node and its host-bridge
 * address (where that node's ingress rules send the traffic), and one pseudo-endpoint per node
 * (task id empty) so each host knows every cluster node's underlay address. In this view a
 * service's `endpoint_mode` carries its ingress traffic policy: `cluster` (any host forwards to
 * ready tasks on any host) or `local` (a host sends only to its own tasks; the client's source
 * address is kept), from the service label `skiff.ingress.traffic`.
 */
import type { NetworkEndpoint, NetworkServiceView, NetworkView } from '../../proto/skiff/v1/dispatcher.js';
import type { Service, Task } from '../../proto/skiff/v1/objects.js';
import { servesTraffic } from '../orchestrator/updater.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import type { StoreReader } from '../store/store.js';
import { HOST_BRIDGE_NETWORK, underlayIp } from '../../common/address.js';

export const INGRESS_VIEW_ID = 'ingress';
export const INGRESS_TRAFFIC_LABEL = 'skiff.ingress.traffic';

/** True when the service publishes a port the hosts must serve. */
export function publishesPorts(service: Service): boolean {
  return (service.endpoint?.ports ?? []).some((port) => port.publishedPort > 0);
}

/** A task's address on its host's bridge (bare), as its agent reported it; '' before that. */
export function hostBridgeAddress(task: Task): string {
  return task.networks.find((attachment) => attachment.network === HOST_BRIDGE_NETWORK)?.addresses.find((address) => !address.includes('/')) ?? '';
}


/** Pure: the ingress view from the publishing services and their tasks (sorted, so equal inputs give equal views). */
export function ingressView(reader: Pick<StoreReader, 'get' | 'list'>, services: readonly Service[], tasks: readonly Task[]): NetworkView {
  const endpoints: NetworkEndpoint[] = [];
  for (const node of [...reader.list('node')].sort((a, b) => (a.meta?.id ?? '').localeCompare(b.meta?.id ?? ''))) {
    const nodeAddr = underlayIp(node.status?.addr ?? '');
    if (nodeAddr !== '') endpoints.push({ taskId: '', taskName: '', serviceId: '', address: '', nodeId: node.meta?.id ?? '', nodeAddr, ready: false });
  }
  for (const task of [...tasks].sort((a, b) => (a.meta?.id ?? '').localeCompare(b.meta?.id ?? ''))) {
    const state = task.status?.state ?? TaskState.TASK_STATE_NEW;
    if (task.nodeId === '' || isTerminal(state)) continue;
    const nodeAddr = underlayIp(reader.get('node', task.nodeId)?.status?.addr ?? '');
    endpoints.push({
      taskId: task.meta?.id ?? '',
      taskName: `${task.serviceName}.${task.slot}`,
      serviceId: task.serviceId,
      address: hostBridgeAddress(task),
      nodeId: task.nodeId,
      nodeAddr,
      // Blue/green: only the active color serves.
      ready: state === TaskState.TASK_STATE_RUNNING && task.desiredState <= TaskState.TASK_STATE_RUNNING && servesTraffic(services.find((service) => service.meta?.id === task.serviceId), task),
    });
  }
  const serviceViews: NetworkServiceView[] = [...services]
    .sort((a, b) => (a.meta?.id ?? '').localeCompare(b.meta?.id ?? ''))
    .map((service) => ({
      serviceId: service.meta?.id ?? '',
      name: service.spec?.name ?? '',
      vip: '',
      endpointMode: service.spec?.labels[INGRESS_TRAFFIC_LABEL] === 'local' ? 'local' : 'cluster',
      ports: (service.endpoint?.ports ?? []).filter((port) => port.publishedPort > 0),
      aliases: [],
    }));
  const network = {
    meta: { id: INGRESS_VIEW_ID, version: 0, createdAtMs: 0, updatedAtMs: 0 },
    spec: { name: INGRESS_VIEW_ID, labels: {}, driver: 'ingress', subnet: '', internal: false, attachable: false },
    allocation: undefined,
  };
  return { network, endpoints, services: serviceViews };
}
