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
    expect(planUpdate(service(), tasks, T0 + 2_000, newId).service?.updateStatus).toEqual({ state: 'completed', message: 'update completed', startedAtMs: T0, completedAtMs: T0 + 2_000, switchedAtMs: 0 });
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

function strategyService(strategy: string, overrides: { state?: string; switchedAtMs?: number; activeColor?: string; canaryReplicas?: number; holdMs?: number } = {}): Service {
  const base = service({ state: overrides.state ?? 'updating' });
  return {
    ...base,
    activeColor: overrides.activeColor ?? '',
    spec: { ...base.spec!, deployStrategy: strategy, canaryReplicas: overrides.canaryReplicas ?? 0, bluegreenHoldMs: overrides.holdMs ?? 10_000 },
    updateStatus: { ...base.updateStatus!, switchedAtMs: overrides.switchedAtMs ?? 0 },
  };
}

const colored = (task: Task, color: string): Task => ({ ...task, color });

describe('blue/green and canary', () => {
  it('blue-green starts the whole green set beside blue, with no traffic until every green task runs', () => {
    const plan = planUpdate(strategyService('blue-green'), v1Fleet(), T0, newId);
    expect(plan.create.map((created) => [created.slot, created.color])).toEqual([[1, 'green'], [2, 'green'], [3, 'green'], [4, 'green']]);
    expect(plan.update).toEqual([]);
    const greens = [1, 2, 3].map((slot) => colored(running(`g${slot}`, slot, 2, T0 + 100, T0 + 1), 'green'));
    const starting = colored(task('g4', 4, 2, TaskState.TASK_STATE_STARTING, { createdAtMs: T0 + 1 }), 'green');
    expect(planUpdate(strategyService('blue-green'), [...v1Fleet(), ...greens, starting], T0 + 500, newId).service).toBeUndefined();
  });

  it('blue-green switches the active color in one write when all of green runs, then removes blue after the hold', () => {
    const greens = [1, 2, 3, 4].map((slot) => colored(running(`g${slot}`, slot, 2, T0 + 100, T0 + 1), 'green'));
    const switched = planUpdate(strategyService('blue-green'), [...v1Fleet(), ...greens], T0 + 500, newId);
    expect(switched.service?.activeColor).toBe('green');
    expect(switched.service?.updateStatus).toMatchObject({ state: 'updating', switchedAtMs: T0 + 500 });
    expect(switched.update).toEqual([]); // blue stays for the hold
    expect(switched.wakeAtMs).toBe(T0 + 10_500);
    const holding = strategyService('blue-green', { switchedAtMs: T0 + 500, activeColor: 'green' });
    expect(planUpdate(holding, [...v1Fleet(), ...greens], T0 + 5_000, newId).update).toEqual([]);
    const ended = planUpdate(holding, [...v1Fleet(), ...greens], T0 + 10_600, newId);
    expect(ended.update.map((stopped) => stopped.meta?.id).sort()).toEqual(['old1', 'old2', 'old3', 'old4']);
    expect(ended.service?.updateStatus?.state).toBe('completed');
  });

  it('blue-green switched back during the hold keeps blue, removes green and restores the previous spec', () => {
    const greens = [1, 2, 3, 4].map((slot) => colored(running(`g${slot}`, slot, 2, T0 + 100, T0 + 1), 'green'));
    const back = strategyService('blue-green', { switchedAtMs: T0 + 500, activeColor: 'blue' });
    const ended = planUpdate(back, [...v1Fleet(), ...greens], T0 + 10_600, newId);
    expect(ended.update.map((stopped) => stopped.meta?.id).sort()).toEqual(['g1', 'g2', 'g3', 'g4']);
    expect(ended.service?.spec?.taskTemplate?.container?.image).toBe('demo/web:v1');
    expect(ended.service?.updateStatus?.state).toBe('rollback_completed');
  });

  it('blue-green removes green that fails or cannot be placed before the switch, leaving blue alone', () => {
    const failedGreen = colored(task('g1', 1, 2, TaskState.TASK_STATE_FAILED, { createdAtMs: T0 + 1, err: 'task: non-zero exit (1)' }), 'green');
    const other = colored(running('g2', 2, 2, T0 + 100, T0 + 1), 'green');
    const plan = planUpdate(strategyService('blue-green'), [...v1Fleet(), failedGreen, other], T0 + 500, newId);
    expect(plan.update.map((stopped) => [stopped.meta?.id, stopped.desiredState])).toEqual([['g2', TaskState.TASK_STATE_SHUTDOWN]]);
    expect(plan.service?.updateStatus?.state).toBe('paused');
    expect(plan.service?.updateStatus?.message).toContain('green task g1 failed before the switch: task: non-zero exit (1); green removed, blue untouched');
    const pending = colored({ ...task('g3', 3, 2, TaskState.TASK_STATE_PENDING, { createdAtMs: T0 + 1, err: 'no suitable node: insufficient memory on 2 nodes' }) }, 'green');
    const short = planUpdate(strategyService('blue-green'), [...v1Fleet(), pending], T0 + 500, newId);
    expect(short.service?.updateStatus?.message).toContain('cannot start the green set beside blue: no suitable node: insufficient memory on 2 nodes');
  });

  it('canary starts K new tasks beside the old ones and waits; promote continues as a rolling update', () => {
    const plan = planUpdate(strategyService('canary', { state: 'canary', canaryReplicas: 2 }), v1Fleet(), T0, newId);
    expect(plan.create.map((created) => created.slot)).toEqual([1, 2]);
    const canaries = [1, 2].map((slot) => running(`c${slot}`, slot, 2, T0 + 100, T0 + 1));
    const waiting = planUpdate(strategyService('canary', { state: 'canary', canaryReplicas: 2 }), [...v1Fleet(), ...canaries], T0 + 5_000, newId);
    expect(waiting.create).toEqual([]);
    expect(waiting.update).toEqual([]); // the old tasks keep serving beside the canaries
    expect(waiting.service?.updateStatus).toMatchObject({ state: 'canary', message: expect.stringContaining('canary: 2/2 new-version tasks serve beside the old ones') });
    const promoted = planUpdate(strategyService('canary', { state: 'updating', canaryReplicas: 2 }), [...v1Fleet(), ...canaries], T0 + 5_000, newId);
    expect(promoted.update.map((stopped) => stopped.meta?.id)).toEqual(['old1', 'old2']);
    expect(promoted.create.map((created) => created.slot)).toEqual([3]);
  });

  it('a rollback replaces only the tasks whose template changed (canaries), keeping the old ones', () => {
    const canaries = [1, 2].map((slot) => running(`c${slot}`, slot, 2, T0 + 100, T0 + 1));
    const rolling = { ...service(), spec: service().previousSpec, previousSpec: service().spec, specVersion: 3, updateStatus: { state: 'rollback_started', message: '', startedAtMs: T0 + 2_000, completedAtMs: 0, switchedAtMs: 0 } };
    const olds = v1Fleet().map((old) => ({ ...old, spec: rolling.spec?.taskTemplate }));
    const plan = planUpdate(rolling, [...olds, ...canaries], T0 + 3_000, newId);
    expect(plan.create).toEqual([]);
    expect(plan.update.map((stopped) => stopped.meta?.id)).toEqual(['c1', 'c2']);
  });
});
