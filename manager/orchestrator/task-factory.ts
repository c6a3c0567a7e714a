/** Building new task objects from a service's current spec. */
import type { Service, Task } from '../../proto/skiff/v1/objects.js';
import { HealthState, TaskState } from '../../proto/skiff/v1/types.js';

/** A new task for `slot`, desired running, observed `new`, made from the service's current spec. */
export function newTask(service: Service, slot: number, nowMs: number, id: string): Task {
  return {
    meta: { id, version: 0, createdAtMs: nowMs, updatedAtMs: nowMs },
    serviceId: service.meta?.id ?? '',
    serviceName: service.spec?.name ?? '',
    slot,
    nodeId: '',
    spec: service.spec?.taskTemplate,
    specVersion: service.specVersion,
    imageDigest: '',
    desiredState: TaskState.TASK_STATE_RUNNING,
    status: {
      state: TaskState.TASK_STATE_NEW,
      message: 'created',
      err: '',
      timestampMs: nowMs,
      exitCode: 0,
      containerId: '',
      pid: 0,
      health: HealthState.HEALTH_STATE_NONE,
    },
    networks: [],
    // A blue/green service's tasks are made in its active color (a restart stays on the serving side).
    color: service.activeColor,
    replacesTaskId: '',
  };
}
