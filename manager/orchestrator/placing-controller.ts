/**
 * The replicated orchestrator and the scheduler in one runner, so that a task the orchestrator
 * creates is placed in the same transaction: it is written once, with its node, instead of
 * created and then updated by the scheduler's next run (which wrote every task twice through
 * Raft, the largest cost of a burst; bench/placement.ts). Tasks that cannot be placed at once
 * are created pending with the scheduler's reason.
 *
 * One runner also means one run at a time: the scheduler's view of node load (PlacementState,
 * kept from commits) never misses placements of another controller's transaction in flight.
 * Tasks other controllers create (the updater, rebalancing) still go through the scheduler's own
 * run, which this controller does as well.
 */
import type { Task } from '../../proto/skiff/v1/objects.js';
import type { StoreReader, WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';
import { remainingBudget, type Controller } from './controller-loop.js';
import { reconcileServices, replicatedController } from './replicated-controller.js';
import { SCHEDULER_KEY, TaskScheduler } from './scheduler-controller.js';

/** Runs only on the leader, like every controller. Each runner needs its own. */
export function placingController(): Controller {
  const scheduler = new TaskScheduler();
  return {
    name: 'replicated-scheduler',
    reportsFinished: true,
    *dirtyKeys(commit: StoreCommit) {
      yield* replicatedController.dirtyKeys(commit);
      if (scheduler.committed(commit)) yield SCHEDULER_KEY;
    },
    allKeys(reader: StoreReader) {
      scheduler.rebuild(reader);
      return [...replicatedController.allKeys(reader), SCHEDULER_KEY];
    },
    // A restart delay ended: the services run again; the scheduler's state is current already.
    wakeKeys: (reader: StoreReader) => [...replicatedController.allKeys(reader), SCHEDULER_KEY],
    reconcile(keys: ReadonlySet<string>, transaction: WriteTransaction, reader: StoreReader, nowMs: number, finished: Set<string>) {
      const serviceKeys = new Set([...keys].filter((key) => key !== SCHEDULER_KEY));
      const created: Task[] = [];
      const wakeAtMs = reconcileServices(
        serviceKeys,
        {
          update: (task) => transaction.update('task', task),
          create: (task) => created.push(task),
          remaining: () => remainingBudget(transaction) - created.length,
        },
        reader,
        nowMs,
        finished,
      );
      // The replicated run marks the keys it is done with; a service key it did not get to runs again.
      if (scheduler.run(transaction, reader, nowMs, created, keys.has(SCHEDULER_KEY))) finished.add(SCHEDULER_KEY);
      return wakeAtMs;
    },
  };
}
