import { describe, expect, it } from 'vitest';
import { HEARTBEAT_MISSES, HeartbeatDeadlines, LEADER_CHANGE_GRACE_PERIODS } from './heartbeat-deadlines.js';

const PERIOD_MS = 1_000;
const CHECK_MS = 500;

/** Runs check() every CHECK_MS from `fromMs` to `toMs` and returns the first time each node expired. */
function checkUntil(deadlines: HeartbeatDeadlines, nodes: string[], fromMs: number, toMs: number): Map<string, number> {
  const expiredAt = new Map<string, number>();
  for (let now = fromMs; now <= toMs; now += CHECK_MS) {
    for (const nodeId of deadlines.expired(nodes, now)) if (!expiredAt.has(nodeId)) expiredAt.set(nodeId, now);
  }
  return expiredAt;
}

describe('HeartbeatDeadlines', () => {
  it('heartbeat deadlines expire a node seen once after HEARTBEAT_MISSES periods of silence', () => {
    const deadlines = new HeartbeatDeadlines(PERIOD_MS, CHECK_MS);
    deadlines.start(0);
    deadlines.seen('a', 1_000);
    const expiredAt = checkUntil(deadlines, ['a'], 500, 10_000);
    expect(expiredAt.get('a')).toBe(1_000 + HEARTBEAT_MISSES * PERIOD_MS + CHECK_MS);
  });

  it('heartbeat deadlines keep a node that keeps sending', () => {
    const deadlines = new HeartbeatDeadlines(PERIOD_MS, CHECK_MS);
    deadlines.start(0);
    for (let now = 0; now <= 20_000; now += CHECK_MS) {
      if (now % PERIOD_MS === 0) deadlines.seen('a', now);
      expect(deadlines.expired(['a'], now)).toEqual([]);
    }
  });

  it('heartbeat deadlines give nodes not seen since a leader change the leader-change grace, not the normal deadline', () => {
    const deadlines = new HeartbeatDeadlines(PERIOD_MS, CHECK_MS);
    deadlines.start(5_000);
    const expiredAt = checkUntil(deadlines, ['never'], 5_500, 30_000);
    expect(expiredAt.get('never')).toBe(5_000 + LEADER_CHANGE_GRACE_PERIODS * PERIOD_MS + CHECK_MS);
    // A node that reconnects during the grace is judged by its own heartbeats from then on.
    deadlines.start(40_000);
    deadlines.seen('back', 41_000);
    expect(checkUntil(deadlines, ['back'], 40_500, 60_000).get('back')).toBe(41_000 + HEARTBEAT_MISSES * PERIOD_MS + CHECK_MS);
  });

  it('heartbeat deadlines forgive the time a stalled manager could not read heartbeats', () => {
    const deadlines = new HeartbeatDeadlines(PERIOD_MS, CHECK_MS);
    deadlines.start(0);
    deadlines.seen('a', 1_000);
    expect(deadlines.expired(['a'], 1_500)).toEqual([]);
    // The event loop was blocked for 5 s: the next check runs late, before the queued heartbeats are read.
    expect(deadlines.expired(['a'], 6_500)).toEqual([]);
    deadlines.seen('a', 6_600);
    expect(deadlines.expired(['a'], 7_000)).toEqual([]);
    // A node that really went silent still expires, HEARTBEAT_MISSES periods after its last heartbeat.
    // Its deadline is 6.6 s + 3 periods = 9.6 s; the first check past it is at 10 s.
    expect(HEARTBEAT_MISSES * PERIOD_MS).toBe(3_000);
    expect(checkUntil(deadlines, ['a'], 7_500, 20_000).get('a')).toBe(10_000);
  });

  it('heartbeat deadlines do not forgive a check that is only a little late', () => {
    const deadlines = new HeartbeatDeadlines(PERIOD_MS, CHECK_MS);
    deadlines.start(0);
    deadlines.seen('a', 0);
    expect(deadlines.expired(['a'], 500)).toEqual([]);
    expect(deadlines.expired(['a'], 1_900)).toEqual([]); // 900 ms late: less than a period
    expect(deadlines.expired(['a'], 3_100)).toEqual(['a']);
  });
});
