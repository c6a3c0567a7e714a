/** Task objects as the dispatcher would send them, and a recorder of the statuses a runner reports. */
import type { Task, TaskStatus } from '../../../proto/skiff/v1/objects.js';
import type { ConfigReference, SecretReference } from '../../../proto/skiff/v1/specs.js';
import { HealthState, TaskState } from '../../../proto/skiff/v1/types.js';
import { taskStateName } from '../../../proto/task-states.js';

export const FAKE_IMAGE = 'demo/web:v1';

/** A task assigned to this node, desired running, observed `state` (assigned by default). */
export function fakeTask(
  id: string,
  options: { state?: TaskState; desiredState?: TaskState; image?: string; secrets?: SecretReference[]; configs?: ConfigReference[] } = {},
): Task {
  return {
    meta: { id, version: 1, createdAtMs: 0, updatedAtMs: 0 },
    serviceId: 'svc1',
    serviceName: 'web',
    slot: 1,
    nodeId: 'node1',
    spec: {
      container: { image: options.image ?? FAKE_IMAGE, command: [], args: [], env: [], user: '', workdir: '', hostname: '', mounts: [], healthcheck: undefined, readOnly: false, capAdd: [], capDrop: [], sysctls: {}, ulimits: [], init: false, stopSignal: '', stopGracePeriodMs: 0, labels: {}, secrets: options.secrets ?? [], configs: options.configs ?? [] },
      resources: undefined,
      restartPolicy: undefined,
      placement: undefined,
      networks: [],
      forceUpdate: 0,
      networkAliases: [],
    },
    specVersion: 1,
    imageDigest: '',
    desiredState: options.desiredState ?? TaskState.TASK_STATE_RUNNING,
    status: {
      state: options.state ?? TaskState.TASK_STATE_ASSIGNED,
      message: '',
      err: '',
      timestampMs: 0,
      exitCode: 0,
      containerId: '',
      pid: 0,
      health: HealthState.HEALTH_STATE_NONE,
    },
    networks: [],
    color: '',
    replacesTaskId: '',
  };
}

export interface RecordedReport {
  taskId: string;
  state: string;
  status: TaskStatus;
  addresses: string[];
}

/** Collects reports in order; `states(id)` is the sequence of state names reported for a task. */
export class ReportRecorder {
  readonly reports: RecordedReport[] = [];
  readonly report = (taskId: string, status: TaskStatus, addresses: string[]): void => {
    this.reports.push({ taskId, state: taskStateName(status.state), status, addresses });
  };

  states(taskId: string): string[] {
    return this.reports.filter((report) => report.taskId === taskId).map((report) => report.state);
  }

  last(taskId: string): RecordedReport | undefined {
    return this.reports.filter((report) => report.taskId === taskId).at(-1);
  }
}
