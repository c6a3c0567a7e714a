/**
 * The scheduler's input model: plain values, no store, no I/O. The manager builds it from a
 * store snapshot; the scheduler turns it into decisions and never mutates what it is given.
 */

export type NodeAvailabilityName = 'active' | 'pause' | 'drain';

/** CPU in nano CPUs (1e9 = one core) and memory in bytes, as the proto's Resources counts them. */
export interface ResourceAmounts {
  nanoCpus: number;
  memoryBytes: number;
}

export const NO_RESOURCES: ResourceAmounts = Object.freeze({ nanoCpus: 0, memoryBytes: 0 });

export interface NodeInfo {
  id: string;
  hostname: string;
  role: 'manager' | 'worker';
  ready: boolean;
  availability: NodeAvailabilityName;
  labels: Readonly<Record<string, string>>;
  /** As the node's agent reports it; empty strings when unknown. */
  platform: { os: string; arch: string };
  /** What the node offers. Zero when the node has not said, so no reservation fits. */
  capacity: ResourceAmounts;
  /** Sum of the reservations of the live tasks already on the node. */
  reserved: ResourceAmounts;
  /** Host-mode ports published by live tasks on the node, as hostPortKey gives them ("8080/tcp"). */
  hostPorts: ReadonlySet<string>;
  /** Live (running or about-to-run) tasks on this node, per service id. */
  tasksByService: ReadonlyMap<string, number>;
  totalTasks: number;
}

/**
 * How a service's tasks are ordered over the nodes that fit: `spread` (the default) puts each on
 * the node with the fewest tasks of the service; `binpack` fills the fullest fitting node first.
 * A service asks for binpack with the service label `skiff.placement=binpack` (see
 * PLACEMENT_STRATEGY_LABEL): it needs no proto change, and placement preferences keep meaning
 * only "spread over label values".
 */
export type PlacementStrategy = 'spread' | 'binpack';

/** The service label that selects the placement strategy; its values are PlacementStrategy. */
export const PLACEMENT_STRATEGY_LABEL = 'skiff.placement';

/**
 * Tasks of one service and spec version, placed in one batch: they share every requirement, so
 * the scheduler checks each node once per batch and then only the node that took the last task.
 */
export interface TaskGroup {
  serviceId: string;
  /** In placement order. */
  taskIds: readonly string[];
  /** Unparsed, as in Placement.constraints ("node.labels.zone==b"); parsed once per batch. */
  constraints: readonly string[];
  /** Attributes to spread over, outermost first, as in PlacementPreference.spread ("node.labels.zone"). */
  preferences: readonly string[];
  /** Reservation of each task. */
  reservations: ResourceAmounts;
  /** Host-mode ports each task publishes, as hostPortKey gives them. */
  hostPorts: readonly string[];
  /** 0 means no limit. */
  maxReplicasPerNode: number;
  strategy: PlacementStrategy;
  /** Recent failures of this service's tasks per node id; the caller picks the window. */
  recentFailuresByNode: ReadonlyMap<string, number>;
}

/** Placement of one call: an assignment (task id -> node id) per placed task, a reason per task left pending. */
export interface ScheduleResult {
  assignments: Map<string, string>;
  unplaced: Map<string, string>;
}

/** The key two tasks collide on when both publish it in host mode on one node: "8080/tcp". */
export function hostPortKey(publishedPort: number, protocol: string): string {
  return `${publishedPort}/${protocol === '' ? 'tcp' : protocol}`;
}
