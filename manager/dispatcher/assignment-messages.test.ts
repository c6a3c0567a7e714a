import { describe, expect, it } from 'vitest';
import { type Assignments, AssignmentsKind } from '../../proto/skiff/v1/dispatcher.js';
import type { Config, Secret, Task } from '../../proto/skiff/v1/objects.js';
import { HealthState, TaskState } from '../../proto/skiff/v1/types.js';
import { assignmentMessages, type DataLookup, MAX_DATA_BYTES_PER_MESSAGE, MAX_TASKS_PER_MESSAGE, newSentData } from './assignment-messages.js';

const FULL = AssignmentsKind.ASSIGNMENTS_KIND_FULL;
const INCREMENTAL = AssignmentsKind.ASSIGNMENTS_KIND_INCREMENTAL;

function task(id: string, uses: { secrets?: string[]; configs?: string[] } = {}, states: { desired?: TaskState; observed?: TaskState } = {}): Task {
  return {
    meta: { id, version: 1, createdAtMs: 0, updatedAtMs: 0 },
    serviceId: 'svc',
    serviceName: 'web',
    slot: 1,
    nodeId: 'n1',
    spec: {
      container: {
        image: 'demo/web:v1', command: [], args: [], env: [], user: '', workdir: '', hostname: '', mounts: [], healthcheck: undefined, readOnly: false, capAdd: [], capDrop: [], sysctls: {}, ulimits: [], init: false, stopSignal: '', stopGracePeriodMs: 0, labels: {},
        secrets: (uses.secrets ?? []).map((secretId) => ({ secretId, secretName: secretId, target: '', uid: 0, gid: 0, mode: 0 })),
        configs: (uses.configs ?? []).map((configId) => ({ configId, configName: configId, target: '', uid: 0, gid: 0, mode: 0 })),
      },
      resources: undefined, restartPolicy: undefined, placement: undefined, networks: [], forceUpdate: 0, networkAliases: [],
    },
    specVersion: 1,
    imageDigest: '',
    desiredState: states.desired ?? TaskState.TASK_STATE_RUNNING,
    status: { state: states.observed ?? TaskState.TASK_STATE_ASSIGNED, message: '', err: '', timestampMs: 0, exitCode: 0, containerId: '', pid: 0, health: HealthState.HEALTH_STATE_NONE },
    networks: [],
    color: '',
    replacesTaskId: '',
  };
}

function stored(id: string, bytes: number): Secret & Config {
  return { meta: { id, version: 1, createdAtMs: 0, updatedAtMs: 0 }, spec: { name: id, labels: {}, data: new Uint8Array(bytes) } };
}

function lookup(secrets: Array<Secret & Config>, configs: Array<Secret & Config> = []): DataLookup {
  const tables: Record<string, Array<Secret & Config>> = { secret: secrets, config: configs };
  // Only secrets and configs are looked up; the cast narrows a fake to the reader's signature.
  return { get: (kind: string, id: string) => tables[kind]?.find((object) => object.meta?.id === id) } as unknown as DataLookup;
}

/** Each message as "KIND tasks=[…] secrets=[…] configs=[…] removed=[…]". */
const summary = (messages: Assignments[]): string[] =>
  messages.map((message) =>
    `${message.kind === FULL ? 'FULL' : 'INCR'} tasks=[${message.updated.map((item) => item.meta?.id).join(',')}] secrets=[${message.secrets.map((item) => item.meta?.id).join(',')}] configs=[${message.configs.map((item) => item.meta?.id).join(',')}] removed=[${message.removed.join(',')}]`,
  );

describe('assignment messages', () => {
  it('assignment messages carry each secret and config once per session, with the first task that uses it', () => {
    const sent = newSentData();
    const data = lookup([stored('s1', 10), stored('s2', 10)], [stored('c1', 10)]);
    const first = assignmentMessages(FULL, [task('t1', { secrets: ['s1', 's1'], configs: ['c1'] }), task('t2', { secrets: ['s1', 's2'] }), task('t3')], [], data, sent);
    expect(summary(first)).toEqual(['FULL tasks=[t1,t2,t3] secrets=[s1,s2] configs=[c1] removed=[]']);
    const later = assignmentMessages(INCREMENTAL, [task('t4', { secrets: ['s2'], configs: ['c1'] })], ['t3'], data, sent);
    expect(summary(later)).toEqual(['INCR tasks=[t4] secrets=[] configs=[] removed=[t3]']);
    // A new session has its own record: everything goes again.
    expect(summary(assignmentMessages(FULL, [task('t4', { secrets: ['s2'] })], [], data, newSentData()))).toEqual(['FULL tasks=[t4] secrets=[s2] configs=[] removed=[]']);
  });

  it('assignment messages send no data for tasks that will not start again, and skip objects that no longer exist', () => {
    const data = lookup([stored('s1', 10)]);
    const messages = assignmentMessages(FULL, [
      task('down', { secrets: ['s1'] }, { desired: TaskState.TASK_STATE_SHUTDOWN }),
      task('done', { secrets: ['s1'] }, { observed: TaskState.TASK_STATE_FAILED }),
      task('started', { secrets: ['s1'] }, { observed: TaskState.TASK_STATE_STARTING }),
      task('up', { secrets: ['s1'] }, { observed: TaskState.TASK_STATE_RUNNING }),
      task('orphan', { secrets: ['gone'] }),
    ], [], data, newSentData());
    expect(summary(messages)).toEqual(['FULL tasks=[down,done,started,up,orphan] secrets=[] configs=[] removed=[]']);
    const preparing = assignmentMessages(FULL, [task('preparing', { secrets: ['s1'] }, { observed: TaskState.TASK_STATE_PREPARING })], [], data, newSentData());
    expect(summary(preparing)).toEqual(['FULL tasks=[preparing] secrets=[s1] configs=[] removed=[]']);
  });

  it('assignment messages split a large set: FULL first, INCREMENTAL parts after, removals in the first only', () => {
    const tasks = Array.from({ length: MAX_TASKS_PER_MESSAGE + 1 }, (_, index) => task(`t${index}`));
    const messages = assignmentMessages(FULL, tasks, ['old'], lookup([]), newSentData());
    expect(messages.map((message) => [message.kind, message.updated.length, message.removed])).toEqual([[FULL, MAX_TASKS_PER_MESSAGE, ['old']], [INCREMENTAL, 1, []]]);
  });

  it('assignment messages keep each message within the data budget, with every task beside its data', () => {
    const half = Math.floor(MAX_DATA_BYTES_PER_MESSAGE / 2);
    const data = lookup([stored('a', half), stored('b', half), stored('c', half), stored('whole', MAX_DATA_BYTES_PER_MESSAGE)]);
    const messages = assignmentMessages(FULL, [task('t1', { secrets: ['a', 'b'] }), task('t2', { secrets: ['a', 'c'] }), task('t3', { secrets: ['whole'] }), task('t4', { secrets: ['c'] })], [], data, newSentData());
    expect(summary(messages)).toEqual([
      'FULL tasks=[t1] secrets=[a,b] configs=[] removed=[]',
      'INCR tasks=[t2] secrets=[c] configs=[] removed=[]',
      // t4's data went before: it fits beside a full budget.
      'INCR tasks=[t3,t4] secrets=[whole] configs=[] removed=[]',
    ]);
    for (const message of messages) expect(message.secrets.reduce((sum, secret) => sum + (secret.spec?.data.length ?? 0), 0)).toBeLessThanOrEqual(MAX_DATA_BYTES_PER_MESSAGE);
  });
});
