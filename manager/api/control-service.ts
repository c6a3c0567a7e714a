/**
 * The Control service: the user-facing API of a manager. Reads come from the store's tables;
 * writes go through one store transaction each and carry the version the caller read.
 */
import type { ControlServer, ServiceReplicaCounts } from '../../proto/skiff/v1/control.js';
import type { ManagerStatus, Node } from '../../proto/skiff/v1/objects.js';
import type { ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { NodeRole, TaskState } from '../../proto/skiff/v1/types.js';
import { newObjectId, type Store } from '../store/store.js';
import { ApiError } from './errors.js';
import { validateServiceSpec } from './validate-service.js';
import { resolveReferences } from './validate-references.js';
import { type ControlOptions, resolveNode, resolveService, unary, unaryRead } from './control-common.js';
import { clusterHandlers } from './cluster-handlers.js';
import { secretHandlers } from './secret-handlers.js';
import { DEFAULT_BLUEGREEN_HOLD_MS } from '../orchestrator/updater.js';
import { checkPublishedPorts, networkHandlers, resolveServiceNetworks } from './network-handlers.js';

/** The spec with its image pinned by `options.resolveImage`, unless the caller said not to. */
async function pinImage(spec: ServiceSpec, noResolveImage: boolean, options: ControlOptions): Promise<ServiceSpec> {
  const container = spec.taskTemplate?.container;
  if (noResolveImage || options.resolveImage === undefined || container === undefined || spec.taskTemplate === undefined) return spec;
  const image = await options.resolveImage(container.image);
  return image === container.image ? spec : { ...spec, taskTemplate: { ...spec.taskTemplate, container: { ...container, image } } };
}
import { nodeRequestHandlers } from './node-request-handlers.js';

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
    listNodes: unaryRead(store, options, async () => {
      const statuses = await options.managerStatuses();
      return { nodes: reader.list('node').map((node) => withManagerStatus(node, statuses)) };
    }),
    getNode: unaryRead(store, options, async (request) => ({ node: withManagerStatus(resolveNode(reader, request.node), await options.managerStatuses()) })),
    createService: unary(options, async (request) => {
      validateServiceSpec(request.spec);
      // Secrets and configs are named in the request; tasks carry their ids.
      const spec = await pinImage(
        resolveServiceNetworks(reader, resolveReferences(reader, request.spec, `cannot create service "${request.spec.name}"`), `cannot create service "${request.spec.name}"`),
        request.noResolveImage,
        options,
      );
      checkPublishedPorts(reader, spec, '', `cannot create service "${spec.name}"`);
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
          rebalanceRequestedAtMs: 0,
        }),
      );
      return { service: reader.get('service', id) };
    }),
    getService: unaryRead(store, options, (request) => ({ service: resolveService(reader, request.service) })),
    listServices: unaryRead(store, options, () => {
      const services = reader.list('service');
      const counts: ServiceReplicaCounts[] = services.map((service) => {
        const serviceId = service.meta?.id ?? '';
        let running = 0;
        let tasks = 0;
        for (const task of reader.tasksByService(serviceId)) {
          if (task.desiredState !== TaskState.TASK_STATE_RUNNING) continue;
          tasks += 1;
          if (task.status?.state === TaskState.TASK_STATE_RUNNING) running += 1;
        }
        // Global: one per node that the orchestrator gave a task to run.
        const desired = service.spec?.mode?.$case === 'replicated' ? service.spec.mode.value.replicas : tasks;
        return { serviceId, running, desired, tasks };
      });
      return { services, counts };
    }),
    updateService: unary(options, async (request) => {
      validateServiceSpec(request.spec);
      const current = resolveService(reader, request.service);
      if (request.spec.name !== current.spec?.name) {
        throw new ApiError('invalid_argument', `cannot update service "${current.spec?.name}": renaming a service is not supported (name "${request.spec.name}")`);
      }
      const spec = await pinImage(
        resolveServiceNetworks(reader, resolveReferences(reader, request.spec, `cannot update service "${current.spec.name}"`), `cannot update service "${current.spec.name}"`),
        request.noResolveImage,
        options,
      );
      const id = current.meta?.id ?? '';
      checkPublishedPorts(reader, spec, id, `cannot update service "${current.spec.name}"`);
      if (specsEqual(spec, current.spec)) return { service: current };
      // Tasks record the template version they run; scaling alone redeploys nothing.
      const redeploy = JSON.stringify(spec.taskTemplate) !== JSON.stringify(current.spec?.taskTemplate);
      const nowMs = options.clock?.() ?? Date.now();
      await store.update((transaction) =>
        transaction.update('service', {
          ...current,
          meta: { ...current.meta!, version: request.version },
          spec,
          previousSpec: current.spec,
          specVersion: redeploy ? current.specVersion + 1 : current.specVersion,
          // A new template starts an update; it supersedes one in progress (or paused). A canary
          // update starts with its canaries only.
          updateStatus: redeploy
            ? spec.deployStrategy === 'canary'
              ? { state: 'canary', message: 'canary: starting', startedAtMs: nowMs, completedAtMs: 0, switchedAtMs: 0 }
              : { state: 'updating', message: 'update in progress', startedAtMs: nowMs, completedAtMs: 0, switchedAtMs: 0 }
            : current.updateStatus,
        }),
      );
      return { service: reader.get('service', id) };
    }),
    rollbackService: unary(options, async (request) => {
      const current = resolveService(reader, request.service);
      const name = current.spec?.name ?? request.service;
      if (current.previousSpec === undefined) throw new ApiError('failed_precondition', `cannot roll back service "${name}": it has no previous spec`);
      const redeploy = JSON.stringify(current.previousSpec.taskTemplate) !== JSON.stringify(current.spec?.taskTemplate);
      const nowMs = options.clock?.() ?? Date.now();
      const status = current.updateStatus;
      if (current.spec?.deployStrategy === 'blue-green' && status?.state === 'updating' && status.switchedAtMs > 0) {
        // During the hold a rollback is a switch back that ends the hold now: the updater removes
        // the new set and restores the previous spec.
        const back = (current.activeColor || 'blue') === 'blue' ? 'green' : 'blue';
        const holdMs = current.spec.bluegreenHoldMs || DEFAULT_BLUEGREEN_HOLD_MS;
        await store.update((transaction) => transaction.update('service', { ...current, activeColor: back, updateStatus: { ...status, message: `rolled back to ${back}`, switchedAtMs: nowMs - holdMs } }));
        return { service: reader.get('service', current.meta?.id ?? '') };
      }
      await store.update((transaction) =>
        transaction.update('service', {
          ...current,
          spec: current.previousSpec,
          previousSpec: current.spec,
          specVersion: redeploy ? current.specVersion + 1 : current.specVersion,
          updateStatus: redeploy
            ? { state: 'rollback_started', message: 'manually requested rollback', startedAtMs: nowMs, completedAtMs: 0, switchedAtMs: 0 }
            : { state: 'rollback_completed', message: 'rollback completed: only the replica count changed', startedAtMs: nowMs, completedAtMs: nowMs, switchedAtMs: 0 },
        }),
      );
      return { service: reader.get('service', current.meta?.id ?? '') };
    }),
    switchService: unary(options, async (request) => {
      const current = resolveService(reader, request.service);
      const name = current.spec?.name ?? request.service;
      if (request.color !== 'blue' && request.color !== 'green') throw new ApiError('invalid_argument', `cannot switch service "${name}": color "${request.color}" must be blue or green`);
      const status = current.updateStatus;
      if (current.spec?.deployStrategy !== 'blue-green' || status?.state !== 'updating' || status.switchedAtMs === 0) {
        throw new ApiError('failed_precondition', `cannot switch service "${name}": only during the hold of a blue-green update (it is ${status?.state || 'not updating'})`);
      }
      await store.update((transaction) => transaction.update('service', { ...current, activeColor: request.color, updateStatus: { ...status, message: `traffic switched to ${request.color} by hand; the other set goes when the hold ends` } }));
      return { service: reader.get('service', current.meta?.id ?? '') };
    }),
    promoteService: unary(options, async (request) => {
      const current = resolveService(reader, request.service);
      const status = current.updateStatus;
      if (status?.state !== 'canary') throw new ApiError('failed_precondition', `cannot promote service "${current.spec?.name ?? request.service}": it has no canaries (it is ${status?.state || 'not updating'})`);
      await store.update((transaction) => transaction.update('service', { ...current, updateStatus: { ...status, state: 'updating', message: 'canary promoted: the rolling update continues' } }));
      return { service: reader.get('service', current.meta?.id ?? '') };
    }),
    rebalanceService: unary(options, async (request) => {
      const current = resolveService(reader, request.service);
      if (current.spec?.mode?.$case !== 'replicated') throw new ApiError('failed_precondition', `cannot rebalance ${current.spec?.name ?? request.service}: only replicated services are rebalanced (a global one has a task per node already)`);
      await store.update((transaction) => transaction.update('service', { ...current, rebalanceRequestedAtMs: options.clock?.() ?? Date.now() }));
      return { service: reader.get('service', current.meta?.id ?? '') };
    }),
    removeService: unary(options, async (request) => {
      const current = resolveService(reader, request.service);
      await store.update((transaction) => transaction.remove('service', current));
      return {};
    }),
    listTasks: unaryRead(store, options, (request) => {
      let tasks = request.service === '' ? reader.list('task') : reader.tasksByService(resolveService(reader, request.service).meta?.id ?? '');
      if (request.node !== '') {
        const nodeId = resolveNode(reader, request.node).meta?.id ?? '';
        tasks = tasks.filter((task) => task.nodeId === nodeId);
      }
      return { tasks };
    }),
    ...clusterHandlers(store, options),
    ...secretHandlers(store, options),
    ...networkHandlers(store, options),
    ...nodeRequestHandlers(reader, options.nodeRequests),
  };
}
