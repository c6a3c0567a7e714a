/**
 * The scheduler's input model: plain values, no store, no I/O. The manager builds it from a
 * store snapshot; the scheduler turns it into decisions.
 */

export type NodeAvailabilityName = 'active' | 'pause' | 'drain';

export interface NodeInfo {
  id: string;
  hostname: string;
  role: 'manager' | 'worker';
  ready: boolean;
  availability: NodeAvailabilityName;
  labels: Record<string, string>;
  /** Running or about-to-run tasks on this node, per service id. */
  tasksByService: Map<string, number>;
  totalTasks: number;
}

export interface TaskToPlace {
  taskId: string;
  serviceId: string;
}

/** Placement of one batch: an assignment per placed task, a reason per task left pending. */
export interface ScheduleResult {
  assignments: Map<string, string>;
  unplaced: Map<string, string>;
}
