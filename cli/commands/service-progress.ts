/**
 * Waiting for a service to converge, with live progress: "web: 2/3 running". Fails fast when a
 * task of the current spec is rejected (e.g. its image does not exist): the service stays, the
 * CLI says why and exits non-zero.
 */
import type { Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import type { ControlConnection } from '../client.js';
import { CliError } from '../client.js';

/** Poll interval while waiting. */
const POLL_INTERVAL_MS = 250;
/** How long a global service with no task yet is waited for before 0/0 counts as converged. */
const GLOBAL_SETTLE_MS = 3_000;

export interface Convergence {
  running: number;
  desired: number;
  stopping: number;
  rejected: Task | undefined;
}

/**
 * How far a service is: `desired` is its replica count, or for a global service (`undefined`)
 * the tasks of the current spec that are meant to run, one per eligible node.
 */
export function convergence(tasks: readonly Task[], desired: number | undefined, specVersion: number): Convergence {
  const current = tasks.filter((task) => task.specVersion === specVersion);
  desired ??= current.filter((task) => task.desiredState === TaskState.TASK_STATE_RUNNING).length;
  const running = current.filter((task) => task.desiredState === TaskState.TASK_STATE_RUNNING && task.status?.state === TaskState.TASK_STATE_RUNNING).length;
  const stopping = tasks.filter((task) => task.desiredState > TaskState.TASK_STATE_RUNNING && task.status?.state === TaskState.TASK_STATE_RUNNING).length;
  const rejected = current.find((task) => task.status?.state === TaskState.TASK_STATE_REJECTED);
  return { running, desired, stopping, rejected };
}

export async function waitForConvergence(connection: ControlConnection, serviceName: string, timeoutMs: number): Promise<void> {
  const startedAt = Date.now();
  const deadline = startedAt + timeoutMs;
  const tty = process.stdout.isTTY === true;
  let lastLine = '';
  for (;;) {
    const { service } = await connection.call((c) => c.getService, { service: serviceName });
    const desired = service?.spec?.mode?.$case === 'replicated' ? service.spec.mode.value.replicas : undefined;
    const { tasks } = await connection.call((c) => c.listTasks, { service: serviceName, node: '' });
    const state = convergence(tasks, desired, service?.specVersion ?? 0);
    // A global service's tasks appear once the orchestrator has seen it: none yet is not "converged",
    // unless that lasts (no node is eligible).
    const settling = desired === undefined && state.desired === 0 && Date.now() - startedAt < GLOBAL_SETTLE_MS;
    const line = `${serviceName}: ${state.running}/${state.desired} running${state.stopping > 0 ? `, ${state.stopping} stopping` : ''}`;
    if (line !== lastLine) {
      process.stdout.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
      lastLine = line;
    }
    if (state.rejected !== undefined) {
      if (tty) process.stdout.write('\n');
      throw new CliError(`service ${serviceName} did not converge: task ${state.rejected.meta?.id} rejected: ${state.rejected.status?.err || state.rejected.status?.message}`);
    }
    if (state.running === state.desired && state.stopping === 0 && !settling) {
      process.stdout.write(tty ? `\r\x1b[K${line}: converged\n` : `${serviceName}: converged\n`);
      return;
    }
    if (Date.now() > deadline) {
      if (tty) process.stdout.write('\n');
      throw new CliError(`service ${serviceName} did not converge within ${Math.round(timeoutMs / 1000)} s (${line}); see skiff service ps ${serviceName}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}
