/** Runs the rolling updater for every service with an update or rollback in progress. */
import { newObjectId, type StoreReader, type WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';
import { remainingBudget, type Controller } from './controller-loop.js';
import { planUpdate } from './updater.js';

const inProgress = (state: string | undefined): boolean => state === 'updating' || state === 'rollback_started' || state === 'canary';

export const updateController: Controller = {
  name: 'updater',
  *dirtyKeys(commit: StoreCommit) {
    for (const event of commit.events) {
      if (event.kind === 'service') yield event.object.meta?.id ?? '';
      if (event.kind === 'task') yield event.object.serviceId;
    }
  },
  allKeys(reader: StoreReader) {
    return reader.list('service').filter((service) => inProgress(service.updateStatus?.state)).map((service) => service.meta?.id ?? '');
  },
  reconcile(keys: ReadonlySet<string>, transaction: WriteTransaction, reader: StoreReader, nowMs: number) {
    let wakeAtMs: number | undefined;
    for (const serviceId of keys) {
      if (remainingBudget(transaction) === 0) return 0;
      const service = reader.get('service', serviceId);
      if (service === undefined || !inProgress(service.updateStatus?.state)) continue;
      const plan = planUpdate(service, reader.tasksByService(serviceId), nowMs, newObjectId);
      for (const task of plan.update) transaction.update('task', task);
      for (const task of plan.create) transaction.create('task', task);
      if (plan.service !== undefined) transaction.update('service', plan.service);
      if (plan.wakeAtMs !== undefined) wakeAtMs = Math.min(wakeAtMs ?? plan.wakeAtMs, plan.wakeAtMs);
    }
    return wakeAtMs;
  },
};
