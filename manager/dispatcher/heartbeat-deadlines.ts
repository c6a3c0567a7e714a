/**
 * When a node has missed its heartbeats, as the leader's dispatcher judges it. Pure: the caller
 * passes the time.
 *
 * Two things are not the node's fault and must not mark it down:
 * - a leader change: every agent has to notice the old leader is gone, find the new one and open
 *   a new TLS session; with many nodes on a busy new leader that takes longer than a few heartbeat
 *   periods, and marking them all down would orphan and reschedule every task in the cluster.
 *   Nodes not seen since this leader began get LEADER_CHANGE_GRACE_PERIODS periods.
 * - the manager's own stall: while its event loop is blocked (a long apply, GC), heartbeats wait
 *   unread in the sockets, and the timer that checks deadlines fires before they are read. A check
 *   that comes late by more than a period moves every deadline on by the lateness.
 */

/** Heartbeat periods a node may miss before it is marked down. */
export const HEARTBEAT_MISSES = 3;
/** Heartbeat periods a node has to reach a new leader before it is marked down. */
export const LEADER_CHANGE_GRACE_PERIODS = 10;

export class HeartbeatDeadlines {
  private readonly lastSeenMs = new Map<string, number>();
  private unseenSinceMs = 0;
  private lastCheckMs = 0;

  constructor(
    private readonly heartbeatPeriodMs: number,
    /** How often check() is meant to run. */
    private readonly checkIntervalMs: number,
  ) {}

  /** This manager starts leading: nothing seen before counts. */
  start(nowMs: number): void {
    this.lastSeenMs.clear();
    this.unseenSinceMs = nowMs + (LEADER_CHANGE_GRACE_PERIODS - HEARTBEAT_MISSES) * this.heartbeatPeriodMs;
    this.lastCheckMs = nowMs;
  }

  /** A hello or heartbeat from the node arrived. */
  seen(nodeId: string, nowMs: number): void {
    this.lastSeenMs.set(nodeId, nowMs);
  }

  /**
   * Of `candidates` (nodes the store holds as ready or unknown), those whose deadline has passed.
   * Call it every checkIntervalMs.
   */
  expired(candidates: readonly string[], nowMs: number): string[] {
    const lateMs = nowMs - this.lastCheckMs - this.checkIntervalMs;
    this.lastCheckMs = nowMs;
    if (lateMs > this.heartbeatPeriodMs) this.forgive(lateMs);
    const deadlineMs = HEARTBEAT_MISSES * this.heartbeatPeriodMs;
    return candidates.filter((nodeId) => nowMs - (this.lastSeenMs.get(nodeId) ?? this.unseenSinceMs) > deadlineMs);
  }

  /** Moves every deadline on by `ms`: the time this manager could not read heartbeats. */
  private forgive(ms: number): void {
    for (const [nodeId, seenMs] of this.lastSeenMs) this.lastSeenMs.set(nodeId, seenMs + ms);
    this.unseenSinceMs += ms;
  }
}
