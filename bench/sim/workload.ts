/**
 * The placement workload against a simulated cluster: S replicated services of R replicas created
 * at once through the Control API, and the conditions the benchmark waits for, each with a deadline.
 */
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { specFromFlags } from '../../cli/commands/service-flags.js';
import type { CreateServiceResponse, ListServicesResponse } from '../../proto/skiff/v1/control.js';
import { checkNotStopping, pollUntil, progress } from '../bench-support.js';
import { call, deadline, type SimManager } from './cluster.js';

/** The image of the benchmark's services; simulated agents never pull it. */
const IMAGE = 'demo/web:v1';
/** CreateService calls in flight at once. */
const CREATES_IN_FLIGHT = 16;
const CREATE_DEADLINE_MS = 60_000;
const LIST_DEADLINE_MS = 30_000;
/** Between two looks at a condition; the reported times are this coarse. */
export const CONDITION_POLL_INTERVAL_MS = 50;
/** Between two ListServices calls while waiting for RUNNING (each walks every task on the leader). */
const RUNNING_POLL_INTERVAL_MS = 250;
/** Between two progress lines while waiting. */
const PROGRESS_INTERVAL_MS = 2_000;

/** Between two looks at one service while creating paced (see createServices). */
const PACED_POLL_INTERVAL_MS = 10;

export interface Workload {
  services: number;
  replicas: number;
  /**
   * Create one service at a time and wait for `afterEach` before the next, instead of a burst of
   * CREATES_IN_FLIGHT calls: each service's placement timed on its own. (It began as a workaround
   * for controller runs over the store's MAX_TRANSACTION_ACTIONS, which retried forever; controllers
   * now stop at their write budget, see controller-loop.ts, and a burst converges.)
   */
  paced: boolean;
}

/**
 * Service `bench-place-<index>` with `replicas` replicas and no reservations. Returns their ids.
 * When `workload.paced`, calls are made one at a time and `afterEach(index, id)` is awaited after each.
 */
export async function createServices(manager: SimManager, workload: Workload, afterEach: (index: number, id: string) => Promise<void>): Promise<string[]> {
  const ids: string[] = new Array<string>(workload.services).fill('');
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < workload.services) {
      checkNotStopping();
      const index = next;
      next += 1;
      const spec = specFromFlags(IMAGE, [], { name: `bench-place-${index}`, replicas: String(workload.replicas), env: [], label: [] });
      // No digest resolution: the manager would ask the image's registry (docker.io for this
      // name), which the simulation neither has nor needs (simulated agents never pull); with no
      // route out, each create waited for that lookup to fail, seconds that are not placement.
      const response = await call<CreateServiceResponse>((callback) => manager.client.createService({ spec, noResolveImage: true }, new grpc.Metadata(), deadline(CREATE_DEADLINE_MS), callback));
      ids[index] = response.service?.meta?.id ?? '';
      if (ids[index] === '') throw new Error(`cannot create service bench-place-${index}: the response carries no id`);
      if (workload.paced) await afterEach(index, ids[index] ?? '');
    }
  };
  await Promise.all(Array.from({ length: workload.paced ? 1 : Math.min(CREATES_IN_FLIGHT, workload.services) }, worker));
  return ids;
}

/** The poll interval of a wait between two paced creates. */
export const PACED_WAIT = { intervalMs: PACED_POLL_INTERVAL_MS };

/** A progress line at most every PROGRESS_INTERVAL_MS. */
function throttledProgress(): (line: string) => void {
  let lastAt = 0;
  return (line) => {
    const now = performance.now();
    if (now - lastAt < PROGRESS_INTERVAL_MS) return;
    lastAt = now;
    progress(line);
  };
}

/**
 * Waits until every service has `replicas` tasks that should run, as `manager`'s store has them
 * committed. One ListTasks per service not yet complete per look: a complete service is not asked
 * again, so each task crosses the wire about once.
 */
export async function waitForTasksCommitted(manager: SimManager, serviceIds: readonly string[], workload: Workload, timeoutMs: number, intervalMs = CONDITION_POLL_INTERVAL_MS): Promise<void> {
  // One ListServices per poll (its counts say how many tasks each service has to run), not a
  // ListTasks per service: listing 100,000 tasks every 50 ms loaded the very leader being timed.
  const wanted = new Set(serviceIds);
  const target = serviceIds.length * workload.replicas;
  const say = serviceIds.length === 1 ? (): void => undefined : throttledProgress();
  await pollUntil('see every task committed', async () => {
    const response = await call<ListServicesResponse>((callback) => manager.client.listServices({}, new grpc.Metadata(), deadline(LIST_DEADLINE_MS), callback));
    const committed = response.counts.filter((count) => wanted.has(count.serviceId)).reduce((sum, count) => sum + Math.min(count.tasks, workload.replicas), 0);
    say(`tasks committed: ${committed}/${target}`);
    return committed >= target ? true : undefined;
  }, { intervalMs, timeoutMs });
}

/** Waits until `count()` reaches `target`; `count` is read in this process (the fleet's view). */
export async function waitForCount(what: string, count: () => number, target: number, timeoutMs: number, intervalMs = CONDITION_POLL_INTERVAL_MS): Promise<void> {
  const say = throttledProgress();
  await pollUntil(what, async () => {
    const seen = count();
    say(`${what}: ${seen}/${target}`);
    return seen >= target ? true : undefined;
  }, { intervalMs, timeoutMs });
}

/** Waits until ListServices counts every task of `serviceIds` as running. */
export async function waitForRunning(manager: SimManager, serviceIds: readonly string[], workload: Workload, timeoutMs: number): Promise<void> {
  const wanted = new Set(serviceIds);
  const target = serviceIds.length * workload.replicas;
  const say = throttledProgress();
  await pollUntil('see every task running', async () => {
    const response = await call<ListServicesResponse>((callback) => manager.client.listServices({}, new grpc.Metadata(), deadline(LIST_DEADLINE_MS), callback));
    const running = response.counts.filter((count) => wanted.has(count.serviceId)).reduce((sum, count) => sum + count.running, 0);
    say(`running: ${running}/${target}`);
    return running >= target ? true : undefined;
  }, { intervalMs: RUNNING_POLL_INTERVAL_MS, timeoutMs });
}
