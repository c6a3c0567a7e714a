/** Runs the replicated reconcile for every service whose service or tasks changed. */
import { NodeAvailability } from '../../proto/skiff/v1/types.js';
import { newObjectId, type StoreReader, type WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';
import type { Controller } from './controller-loop.js';
import { reconcileReplicated } from './replicated.js';

/** A dirty key that stands for every service. */
const EVERY_SERVICE = '*';

export const replicatedController: Controller = {
  name: 'replicated',
  *dirtyKeys(commit: StoreCommit) {
    for (const event of commit.events) {
      if (event.kind === 'service') yield event.object.meta?.id ?? '';
      if (event.kind === 'task') yield event.object.serviceId;
      // A node drained: every service may have a task there (resolved against the store below).
      if (event.kind === 'node' && event.object.spec?.availability === NodeAvailability.NODE_AVAILABILITY_DRAIN) yield EVERY_SERVICE;
    }
  },
  allKeys(reader: StoreReader) {
    const ids = new Set(reader.list('service').map((service) => service.meta?.id ?? ''));
    for (const task of reader.list('task')) ids.add(task.serviceId);
    return ids;
  },
  reconcile(keys: ReadonlySet<string>, transaction: WriteTransaction, reader: StoreReader, nowMs: number) {
    let wakeAtMs: number | undefined;
    const drained = new Set(reader.list('node').filter((node) => node.spec?.availability === NodeAvailability.NODE_AVAILABILITY_DRAIN).map((node) => node.meta?.id ?? ''));
    const serviceIds = keys.has(EVERY_SERVICE) ? new Set(replicatedController.allKeys(reader)) : keys;
    for (const serviceId of serviceIds) {
      const service = reader.get('service', serviceId);
      if (service !== undefined && service.spec?.mode?.$case !== 'replicated') continue;
      const actions = reconcileReplicated(service, reader.tasksByService(serviceId), nowMs, newObjectId, drained);
      for (const task of actions.create) transaction.create('task', task);
      for (const task of actions.update) transaction.update('task', task);
      if (actions.wakeAtMs !== undefined) wakeAtMs = Math.min(wakeAtMs ?? actions.wakeAtMs, actions.wakeAtMs);
    }
    return wakeAtMs;
  },
};
