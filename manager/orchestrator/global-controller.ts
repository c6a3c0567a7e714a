// Runs the global reconcile for every global service; any node change touches all of them.
import type { Node } from '../../proto/skiff/v1/objects.js';
import type { ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { NodeAvailability, NodeState } from '../../proto/skiff/v1/types.js';
import { newObjectId, type StoreReader, type WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';
import { remainingBudget, type Controller } from './controller-loop.js';
import { reconcileGlobal, type GlobalNode } from './global.js';

const EVERY_SERVICE = '*';

/** Whether `node` meets the placement constraints of `spec`; set by the scheduler's matcher. */
export type ConstraintCheck = (spec: ServiceSpec | undefined, node: Node) => boolean;

export function globalNodes(reader: StoreReader, spec: ServiceSpec | undefined, meets: ConstraintCheck): GlobalNode[] {
  return reader.list('node').map((node) => {
    const availability = node.spec?.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE;
    const fits = availability !== NodeAvailability.NODE_AVAILABILITY_DRAIN && meets(spec, node);
    return {
      id: node.meta?.id ?? '',
      keeps: fits,
      eligible: fits && availability === NodeAvailability.NODE_AVAILABILITY_ACTIVE && node.status?.state === NodeState.NODE_STATE_READY,
    };
  });
}

export function globalController(meets: ConstraintCheck): Controller {
  const controller: Controller = {
    name: 'global',
    *dirtyKeys(commit: StoreCommit) {
      for (const event of commit.events) {
        if (event.kind === 'service') yield event.object.meta?.id ?? '';
        if (event.kind === 'task') yield event.object.serviceId;
        if (event.kind === 'node') yield EVERY_SERVICE;
      }
    },
    allKeys(reader: StoreReader) {
      return reader.list('service').filter((service) => service.spec?.mode?.$case === 'global').map((service) => service.meta?.id ?? '');
    },
    reconcile(keys: ReadonlySet<string>, transaction: WriteTransaction, reader: StoreReader, nowMs: number) {
      let wakeAtMs: number | undefined;
      const serviceIds = keys.has(EVERY_SERVICE) ? new Set([...keys, ...controller.allKeys(reader)]) : keys;
      for (const serviceId of serviceIds) {
        if (remainingBudget(transaction) === 0) break; // the runner runs the keys again
        if (serviceId === EVERY_SERVICE) continue;
        const service = reader.get('service', serviceId);
        if (service !== undefined && service.spec?.mode?.$case !== 'global') continue; // before reading its tasks: most services are replicated
        const tasks = reader.tasksByService(serviceId);
        // A removed service's tasks: only if they were global (the replicated controller owns the rest).
        if (service === undefined && tasks.every((task) => task.slot !== 0)) continue;
        const actions = reconcileGlobal(service, tasks, globalNodes(reader, service?.spec, meets), nowMs, newObjectId);
        // Updates first (they free slots and nodes), then creates, within this run's budget.
        for (const task of actions.update.slice(0, remainingBudget(transaction))) transaction.update('task', task);
        for (const task of actions.create.slice(0, remainingBudget(transaction))) transaction.create('task', task);
        if (actions.wakeAtMs !== undefined) wakeAtMs = Math.min(wakeAtMs ?? actions.wakeAtMs, actions.wakeAtMs);
      }
      return wakeAtMs;
    },
  };
  return controller;
}
