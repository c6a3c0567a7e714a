import { describe, expect, it } from 'vitest';
import { Service, type Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { fakeTask } from './testing/fake-objects.js';
import { planUpdate } from './updater.js';

const T0 = 1_000_000;

function service(overrides: { parallelism?: number; order?: string; failureAction?: string; monitorMs?: number; delayMs?: number; maxFailureRatio?: number; state?: string } = {}): Service {
  return Service.fromPartial({
    meta: { id: 'svc' },
    spec: {
      name: 'web',
      mode: { $case: 'replicated', value: { replicas: 4 } },
      taskTemplate: { container: { image: 'demo/web:v2' } },
      updateConfig: {
        parallelism: overrides.parallelism ?? 1,
        order: overrides.order ?? 'start-first',
        failureAction: overrides.failureAction ?? 'pause',
        monitorMs: overrides.monitorMs ?? 1_000,
        delayMs: overrides.delayMs ?? 0,
        maxFailureRatio: overrides.maxFailureRatio ?? 0,
      },
    },
    previousSpec: { name: 'web', mode: { $case: 'replicated', value: { replicas: 4 } }, taskTemplate: { container: { image: 'demo/web:v1' } } },
    specVersion: 2,
    updateStatus: { state: overrides.state ?? 'updating', message: '', startedAtMs: T0, completedAtMs: 0 },
  });
}

function task(id: string, slot: number, specVersion: number, state: TaskState, options: { createdAtMs?: number; timestampMs?: number; desiredState?: TaskState; err?: string } = {}): Task {
  const base = fakeTask(id, { slot, state, nodeId: 'n1', ...(options.desiredState === undefined ? {} : { desiredState: options.desiredState }) });
  return { ...base, specVersion, meta: { ...base.meta!, createdAtMs: options.createdAtMs ?? T0 - 10_000 }, status: { ...base.status!, timestampMs: options.timestampMs ?? 0, err: options.err ?? '' } };
}

const running = (id: string, slot: number, specVersion: number, sinceMs = T0 - 10_000, createdAtMs = T0 - 10_000): Task =>
  task(id, slot, specVersion, TaskState.TASK_STATE_RUNNING, { timestampMs: sinceMs, createdAtMs });
const v1Fleet = (): Task[] => [1, 2, 3, 4].map((slot) => running(`old${slot}`, slot, 1));

let ids = 0;
const newId = (): string => `new${(ids += 1)}`;

describe('rolling updater', () => {
  it('start-first: starts a batch of new tasks beside the old ones, lowest slots first', () => {
    const plan = planUpdate(service({ parallelism: 2 }), v1Fleet(), T0, newId);
    expect(plan.create.map((created) => [created.slot, created.specVersion, created.replacesTaskId])).toEqual([[1, 2, ''], [2, 2, '']]);
    expect(plan.update).toEqual([]);
    expect(plan.service).toBeUndefined();
  });

  it('start-first: stops the old task once the new one runs, and starts the next batch only after the monitor period', () => {
    const tasks = [...v1Fleet(), running('n1', 1, 2, T0 + 100, T0 + 1), running('n2', 2, 2, T0 + 200, T0 + 1)];
    const during = planUpdate(service({ parallelism: 2 }), tasks, T0 + 500, newId);
    expect(during.update.map((stopped) => [stopped.meta?.id, stopped.desiredState])).toEqual([['old1', TaskState.TASK_STATE_SHUTDOWN], ['old2', TaskState.TASK_STATE_SHUTDOWN]]);
    expect(during.create).toEqual([]);
    expect(during.wakeAtMs).toBe(T0 + 1_100);
    const after = planUpdate(service({ parallelism: 2 }), tasks, T0 + 1_300, newId);
    expect(after.create.map((created) => created.slot)).toEqual([3, 4]);
  });

  it('waits the update delay between batches', () => {
    const tasks = [...v1Fleet(), running('n1', 1, 2, T0 + 100, T0 + 1)];
    const waiting = planUpdate(service({ delayMs: 5_000 }), tasks, T0 + 2_000, newId);
    expect(waiting.create).toEqual([]);
    expect(waiting.wakeAtMs).toBe(T0 + 1_100 + 5_000);
    expect(planUpdate(service({ delayMs: 5_000 }), tasks, T0 + 6_200, newId).create.map((created) => created.slot)).toEqual([2]);
  });

  it('stop-first: stops the old task and makes a replacement that waits for it', () => {
    const plan = planUpdate(service({ order: 'stop-first' }), v1Fleet(), T0, newId);
    expect(plan.update.map((stopped) => [stopped.meta?.id, stopped.desiredState])).toEqual([['old1', TaskState.TASK_STATE_SHUTDOWN]]);
    expect(plan.create.map((created) => [created.slot, created.replacesTaskId])).toEqual([[1, 'old1']]);
  });

  it('parallelism 0 updates every slot at once', () => {
    expect(planUpdate(service({ parallelism: 0 }), v1Fleet(), T0, newId).create).toHaveLength(4);
  });

  it('completes when every slot runs the new version past its monitor period', () => {
    const tasks = [1, 2, 3, 4].map((slot) => running(`n${slot}`, slot, 2, T0 + 100, T0 + 1));
    expect(planUpdate(service(), tasks, T0 + 500, newId).service).toBeUndefined();
    expect(planUpdate(service(), tasks, T0 + 2_000, newId).service?.updateStatus).toEqual({ state: 'completed', message: 'update completed', startedAtMs: T0, completedAtMs: T0 + 2_000 });
  });

  it('a failed new task pauses the update with the reason; paused updates do nothing', () => {
    const failed = task('n1', 1, 2, TaskState.TASK_STATE_FAILED, { createdAtMs: T0 + 1, err: 'task: non-zero exit (3)' });
    const plan = planUpdate(service(), [...v1Fleet(), failed], T0 + 500, newId);
    expect(plan.service?.updateStatus).toMatchObject({ state: 'paused', message: 'update paused: task n1 failed: task: non-zero exit (3)' });
    expect(plan.create).toEqual([]);
    expect(planUpdate(service({ state: 'paused' }), v1Fleet(), T0, newId)).toEqual({ create: [], update: [], service: undefined, wakeAtMs: undefined });
  });

  it('tolerates failures up to the max failure ratio, and ignores them with continue', () => {
    const failed = task('n1', 1, 2, TaskState.TASK_STATE_FAILED, { createdAtMs: T0 + 1 });
    expect(planUpdate(service({ maxFailureRatio: 0.25 }), [...v1Fleet(), failed], T0, newId).service).toBeUndefined();
    expect(planUpdate(service({ maxFailureRatio: 0.2 }), [...v1Fleet(), failed], T0, newId).service?.updateStatus?.state).toBe('paused');
    expect(planUpdate(service({ failureAction: 'continue' }), [...v1Fleet(), failed], T0, newId).service).toBeUndefined();
    // A failure from before this update started does not count.
    const old = task('x', 1, 2, TaskState.TASK_STATE_FAILED, { createdAtMs: T0 - 1 });
    expect(planUpdate(service(), [...v1Fleet(), old], T0, newId).service).toBeUndefined();
  });

  it('failure action rollback goes back to the previous spec; a failing rollback pauses instead of rolling back again', () => {
    const failed = task('n1', 1, 2, TaskState.TASK_STATE_FAILED, { createdAtMs: T0 + 1 });
    const plan = planUpdate(service({ failureAction: 'rollback' }), [...v1Fleet(), failed], T0 + 500, newId);
    expect(plan.service?.spec?.taskTemplate?.container?.image).toBe('demo/web:v1');
    expect(plan.service?.previousSpec?.taskTemplate?.container?.image).toBe('demo/web:v2');
    expect(plan.service?.specVersion).toBe(3);
    expect(plan.service?.updateStatus).toMatchObject({ state: 'rollback_started', startedAtMs: T0 + 500 });
    const rolling = { ...plan.service!, updateStatus: { ...plan.service!.updateStatus!, state: 'rollback_started' } };
    const failedAgain = task('r1', 1, 3, TaskState.TASK_STATE_FAILED, { createdAtMs: T0 + 600 });
    expect(planUpdate(rolling, [...v1Fleet(), failedAgain], T0 + 700, newId).service?.updateStatus?.state).toBe('rollback_paused');
  });
});
