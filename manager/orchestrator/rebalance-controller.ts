// Runs the rebalance plan for services with `--rebalance auto`, and for services a user asked
// to rebalance until their spread is even again (then the request is cleared).
import { NodeAvailability, NodeState } from '../../proto/skiff/v1/types.js';
import { newObjectId, type StoreReader, type WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';
import type { Controller } from './controller-loop.js';
import { planRebalance } from './rebalance.js';
import { meetsPlacementConstraints } from './scheduler-controller.js';

const EVERY_SERVICE = '*';

export const rebalanceController: Controller = {
  name: 'rebalance',
  *dirtyKeys(commit: StoreCommit) {
    for (const event of commit.events) {
      if (event.kind === 'service') yield event.object.meta?.id ?? '';
      if (event.kind === 'task') yield event.object.serviceId;
      if (event.kind === 'node') yield EVERY_SERVICE;
    }
  },
  allKeys(reader: StoreReader) {
    return reader.list('service').filter((service) => service.spec?.rebalance === 'auto' || service.rebalanceRequestedAtMs > 0).map((service) => service.meta?.id ?? '');
  },
  reconcile(keys: ReadonlySet<string>, transaction: WriteTransaction, reader: StoreReader, nowMs: number) {
    const serviceIds = keys.has(EVERY_SERVICE) ? new Set(rebalanceController.allKeys(reader)) : keys;
    for (const serviceId of serviceIds) {
      const service = reader.get('service', serviceId);
      if (service?.spec?.mode?.$case !== 'replicated') continue;
      const requested = service.rebalanceRequestedAtMs > 0;
      if (service.spec.rebalance !== 'auto' && !requested) continue;
      // An update moves tasks itself; rebalancing waits until it is over.
      if (service.updateStatus?.state === 'updating' || service.updateStatus?.state === 'rollback_started' || service.updateStatus?.state === 'canary') continue;
      const eligible = reader
        .list('node')
        .filter((node) => node.status?.state === NodeState.NODE_STATE_READY && (node.spec?.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE) === NodeAvailability.NODE_AVAILABILITY_ACTIVE && meetsPlacementConstraints(service.spec, node))
        .map((node) => node.meta?.id ?? '');
      const plan = planRebalance(service, reader.tasksByService(serviceId), eligible, nowMs, newObjectId);
      for (const task of plan.create) transaction.create('task', task);
      for (const task of plan.update) transaction.update('task', task);
      if (plan.balanced && requested) transaction.update('service', { ...service, rebalanceRequestedAtMs: 0 });
    }
    return undefined;
  },
};
