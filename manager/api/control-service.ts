/**
 * The Control service: the user-facing API of a manager. Reads come from the store's tables;
 * writes go through one store transaction each and carry the version the caller read.
 */
import * as grpc from '@grpc/grpc-js';
import { peerIdentity } from '../../pki/index.js';
import type { ControlServer, ServiceReplicaCounts } from '../../proto/skiff/v1/control.js';
import type { ManagerStatus, Node, Service } from '../../proto/skiff/v1/objects.js';
import type { ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { NodeRole, TaskState } from '../../proto/skiff/v1/types.js';
import { newObjectId, type Store, type StoreReader } from '../store/store.js';
import { ApiError } from './errors.js';
import { toGrpcError } from './status-mapping.js';
import { validateServiceSpec } from './validate-service.js';

export interface ControlOptions {
  clusterId: string;
  /** Manager status per manager node id (leader, reachability), as this manager knows it. */
  managerStatuses: () => Promise<Map<string, ManagerStatus>>;
  /** True for the server on the local unix socket, whose file mode is the access control. */
  local: boolean;
}

type UnaryCall<Request> = grpc.ServerUnaryCall<Request, unknown>;

/** Wraps a handler: authorisation first, then domain errors mapped to statuses in one place. */
function unary<Request, Response>(
  options: ControlOptions,
  handler: (request: Request) => Promise<Response> | Response,
): grpc.handleUnaryCall<Request, Response> {
  return (call: UnaryCall<Request>, callback: grpc.sendUnaryData<Response>) => {
    const identity = peerIdentity(call);
    const allowed = options.local || (identity !== undefined && identity.clusterId === options.clusterId && (identity.role === 'admin' || identity.role === 'manager'));
    if (!allowed) {
      callback(toGrpcError(new ApiError('permission_denied', 'cannot call the control API: an admin or manager certificate of this cluster is required')));
      return;
    }
    Promise.resolve()
      .then(() => handler(call.request))
      .then(
        (response) => callback(null, response),
        (error: unknown) => callback(toGrpcError(error)),
      );
  };
}

/** Finds an object by exact id, exact name, or unique id prefix. */
function resolveService(reader: StoreReader, reference: string): Service {
  if (reference === '') throw new ApiError('invalid_argument', 'cannot find service: no service name or id given');
  const found = reader.get('service', reference) ?? reader.findByName('service', reference);
  if (found !== undefined) return found;
  const matches = reader.list('service').filter((service) => service.meta?.id.startsWith(reference));
  if (matches.length === 1 && matches[0] !== undefined) return matches[0];
  if (matches.length > 1) throw new ApiError('invalid_argument', `cannot find service "${reference}": the id prefix is ambiguous`);
  throw new ApiError('not_found', `cannot find service "${reference}": no such service`);
}

function resolveNode(reader: StoreReader, reference: string): Node {
  const nodes = reader.list('node');
  const found = reader.get('node', reference) ?? nodes.find((node) => node.description?.hostname === reference);
  if (found !== undefined) return found;
  const matches = nodes.filter((node) => node.meta?.id.startsWith(reference));
  if (reference !== '' && matches.length === 1 && matches[0] !== undefined) return matches[0];
  throw new ApiError('not_found', `cannot find node "${reference}": no such node`);
}

function specsEqual(a: ServiceSpec | undefined, b: ServiceSpec | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function controlHandlers(store: Store, options: ControlOptions): ControlServer {
  const reader = store.reader;
  const withManagerStatus = (node: Node, statuses: Map<string, ManagerStatus>): Node => {
    const status = statuses.get(node.meta?.id ?? '');
    if (node.role !== NodeRole.NODE_ROLE_MANAGER && status === undefined) return node;
    // A manager node outside the Raft group (removed, or left behind by --force-new-cluster) cannot be reached as a manager.
    return { ...node, managerStatus: status ?? { addr: node.managerStatus?.addr ?? '', leader: false, reachability: 'unreachable', raftId: 0 } };
  };
  return {
    listNodes: unary(options, async () => {
      const statuses = await options.managerStatuses();
      return { nodes: reader.list('node').map((node) => withManagerStatus(node, statuses)) };
    }),
    getNode: unary(options, async (request) => ({ node: withManagerStatus(resolveNode(reader, request.node), await options.managerStatuses()) })),
    getCluster: unary(options, () => {
      const cluster = reader.list('cluster')[0];
      if (cluster === undefined) throw new ApiError('unavailable', 'cannot read cluster: the manager is still starting');
      return { cluster };
    }),
    createService: unary(options, async (request) => {
      validateServiceSpec(request.spec);
      const spec = request.spec;
      if (reader.findByName('service', spec.name) !== undefined) {
        throw new ApiError('already_exists', `cannot create service "${spec.name}": a service with that name already exists`);
      }
      const id = newObjectId();
      await store.update((transaction) =>
        transaction.create('service', {
          meta: { id, version: 0, createdAtMs: 0, updatedAtMs: 0 },
          spec,
          previousSpec: undefined,
          updateStatus: undefined,
          endpoint: undefined,
          activeColor: '',
          specVersion: 1,
        }),
      );
      return { service: reader.get('service', id) };
    }),
    getService: unary(options, (request) => ({ service: resolveService(reader, request.service) })),
    listServices: unary(options, () => {
      const services = reader.list('service');
      const counts: ServiceReplicaCounts[] = services.map((service) => {
        const serviceId = service.meta?.id ?? '';
        const running = reader
          .tasksByService(serviceId)
          .filter((task) => task.desiredState === TaskState.TASK_STATE_RUNNING && task.status?.state === TaskState.TASK_STATE_RUNNING).length;
        const desired = service.spec?.mode?.$case === 'replicated' ? service.spec.mode.value.replicas : 0;
        return { serviceId, running, desired };
      });
      return { services, counts };
    }),
    updateService: unary(options, async (request) => {
      validateServiceSpec(request.spec);
      const spec = request.spec;
      const current = resolveService(reader, request.service);
      if (spec.name !== current.spec?.name) {
        throw new ApiError('invalid_argument', `cannot update service "${current.spec?.name}": renaming a service is not supported (name "${spec.name}")`);
      }
      const id = current.meta?.id ?? '';
      if (specsEqual(spec, current.spec)) return { service: current };
      await store.update((transaction) =>
        transaction.update('service', {
          ...current,
          meta: { ...current.meta!, version: request.version },
          spec,
          previousSpec: current.spec,
          // Tasks record the template version they run; scaling alone redeploys nothing.
          specVersion: JSON.stringify(spec.taskTemplate) === JSON.stringify(current.spec?.taskTemplate) ? current.specVersion : current.specVersion + 1,
        }),
      );
      return { service: reader.get('service', id) };
    }),
    removeService: unary(options, async (request) => {
      const current = resolveService(reader, request.service);
      await store.update((transaction) => transaction.remove('service', current));
      return {};
    }),
    listTasks: unary(options, (request) => {
      let tasks = request.service === '' ? reader.list('task') : reader.tasksByService(resolveService(reader, request.service).meta?.id ?? '');
      if (request.node !== '') {
        const nodeId = resolveNode(reader, request.node).meta?.id ?? '';
        tasks = tasks.filter((task) => task.nodeId === nodeId);
      }
      return { tasks };
    }),
  };
}
