/** Runs the replicated reconcile for every service whose service or tasks changed. */
import { newObjectId, type StoreReader, type WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';
import type { Controller } from './controller-loop.js';
import { reconcileReplicated } from './replicated.js';

export const replicatedController: Controller = {
  name: 'replicated',
  *dirtyKeys(commit: StoreCommit) {
    for (const event of commit.events) {
      if (event.kind === 'service') yield event.object.meta?.id ?? '';
      if (event.kind === 'task') yield event.object.serviceId;
    }
  },
  allKeys(reader: StoreReader) {
    const ids = new Set(reader.list('service').map((service) => service.meta?.id ?? ''));
    for (const task of reader.list('task')) ids.add(task.serviceId);
    return ids;
  },
  reconcile(keys: ReadonlySet<string>, transaction: WriteTransaction, reader: StoreReader, nowMs: number) {
    let wakeAtMs: number | undefined;
    for (const serviceId of keys) {
      const service = reader.get('service', serviceId);
      if (service !== undefined && service.spec?.mode?.$case !== 'replicated') continue;
      const actions = reconcileReplicated(service, reader.tasksByService(serviceId), nowMs, newObjectId);
      for (const task of actions.create) transaction.create('task', task);
      for (const task of actions.update) transaction.update('task', task);
      if (actions.wakeAtMs !== undefined) wakeAtMs = Math.min(wakeAtMs ?? actions.wakeAtMs, actions.wakeAtMs);
    }
    return wakeAtMs;
  },
};
