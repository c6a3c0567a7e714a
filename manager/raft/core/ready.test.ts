import { describe as suite, expect, it } from 'vitest';
import { createRaftCore, defaultRaftConfig } from './core.js';
import { RaftLog } from './raft-log.js';
import { asIndex, asTerm } from './invariant.js';
import { TestNetwork, id, text } from './test-network.js';
import type { Entry, RaftInitialState } from './types.js';

const entry = (index: number, term: number, data = ''): Entry =>
  ({ index: asIndex(index), term: asTerm(term), type: 'normal', data: text(data) });

function initial(overrides: Partial<RaftInitialState> = {}): RaftInitialState {
  return {
    hardState: { term: asTerm(2), vote: id('a'), commit: asIndex(2) },
    snapshot: { meta: { index: asIndex(0), term: asTerm(0), conf: { voters: [id('a'), id('b'), id('c')], learners: [] } }, data: text('') },
    entries: [entry(1, 1, 'one'), entry(2, 2, 'two'), entry(3, 2, 'three')],
    applied: asIndex(1),
    ...overrides,
  };
}

suite('Ready and advance', () => {
  it('Ready hands out unstable entries, hard state and committed entries once each', () => {
    const net = new TestNetwork(['a']);
    const core = net.core('a');
    net.tick('a', 10); // leader; its Ready was processed
    expect(core.hasReady()).toBe(false);
    const result = core.propose(text('x'));
    expect(result).toEqual({ ok: true, index: 2, term: 1 });
    expect(core.hasReady()).toBe(true);
    const first = core.ready();
    expect(first.entries.map((e) => e.index)).toEqual([2]);
    // A lone voter's entry is not committed until its own copy is durable (advance).
    expect(first.hardState).toBeUndefined();
    expect(first.softState).toBeUndefined();
    expect(first.committedEntries).toEqual([]);
    // Not advanced yet: nothing is handed out twice, and nothing commits.
    expect(core.hasReady()).toBe(false);
    expect(core.status().commit).toBe(1);
    core.advance(first);
    expect(core.status().commit).toBe(2);
    const second = core.ready();
    expect(second.entries).toEqual([]);
    expect(second.hardState).toEqual({ term: 1, vote: 'a', commit: 2 });
    expect(second.committedEntries.map((e) => e.index)).toEqual([2]);
    expect(core.hasReady()).toBe(false);
    const third = core.ready();
    expect(third).toMatchObject({ entries: [], committedEntries: [], hardState: undefined, messages: [], readStates: [] });
    expect(core.status().applied).toBe(1);
    core.advance(second);
    expect(core.status().applied).toBe(2);
  });

  it('a leader counts its own entries toward commit only once advance reports them durable', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    const a = net.core('a');
    const before = a.status().commit;
    const result = a.propose(text('x'));
    expect(result.ok).toBe(true);
    const pending = a.ready();
    expect(pending.entries).toHaveLength(1);
    // b gets the append and acknowledges while a's own write is still in flight.
    for (const message of pending.messages.filter((m) => m.to === id('b'))) net.core('b').step(message);
    net.processReady('b');
    for (const message of net.take((m) => m.to === id('a') && m.from === id('b'))) a.step(message);
    // One durable copy (b's) of three is not a majority.
    expect(a.status().commit).toBe(before);
    a.advance(pending);
    expect(a.status().commit).toBe(result.ok ? result.index : -1);
  });

  it('a write that completes after its entries were replaced does not count them as persisted', () => {
    const base = { meta: { index: asIndex(0), term: asTerm(0), conf: { voters: [id('a')], learners: [] } }, data: text('') };
    const log = new RaftLog(base, [entry(1, 1), entry(2, 1)], asIndex(1), asIndex(0));
    expect(log.persisted).toBe(2);
    log.append([entry(3, 1), entry(4, 1)]);
    const inFlight = log.takeUnstable().entries;
    expect(inFlight.map((e) => e.index)).toEqual([3, 4]);
    // A new leader replaces the suffix from 3 while that write is on its way to disk.
    log.append([entry(3, 2)]);
    expect(log.persisted).toBe(2);
    log.stableTo(asIndex(4), asTerm(1)); // the old write completes: index 4 is gone, 3 has another term
    expect(log.persisted).toBe(2);
    log.stableTo(asIndex(3), asTerm(1));
    expect(log.persisted).toBe(2);
    const replacement = log.takeUnstable().entries;
    log.stableTo(replacement[0]!.index, replacement[0]!.term);
    expect(log.persisted).toBe(3);
  });

  it('Ready reports the soft state only when role or leader changes', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    const b = net.core('b');
    expect(b.hasReady()).toBe(false);
    net.tick('a', 10);
    net.deliverOnce((message) => message.to === id('b'));
    // b answered a pre-vote: no state change, only a message.
    expect(net.member('b').disk.hardState).toEqual({ term: 0, vote: '', commit: 0 });
    net.stabilize();
    const c = net.core('c');
    c.tick();
    expect(c.hasReady()).toBe(false);
    net.isolate('a');
    for (let tick = 0; tick < 11; tick++) {
      b.tick();
    }
    const ready = b.ready();
    expect(ready.softState).toEqual({ leader: '', role: 'preCandidate' });
    expect(ready.hardState).toBeUndefined(); // a pre-vote changes nothing durable
    expect(ready.messages.map((m) => `${m.type}->${m.to}`)).toEqual(['preVote->a', 'preVote->c']);
    b.advance(ready);
  });

  it('a restarted member returns the committed entries it had not applied, then continues', () => {
    const core = createRaftCore(defaultRaftConfig(id('a'), () => 0), initial());
    expect(core.status()).toMatchObject({ term: 2, commit: 2, applied: 1, lastIndex: 3, role: 'follower' });
    const ready = core.ready();
    expect(ready.entries).toEqual([]); // already on disk
    expect(ready.hardState).toBeUndefined();
    expect(ready.committedEntries.map((e) => e.index)).toEqual([2]);
    core.advance(ready);
    expect(core.hasReady()).toBe(false);
  });

  it('restart preserves the vote: no second vote in the same term', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { checkQuorum: false });
    net.elect('a');
    net.restart('b');
    expect(net.member('b').disk.hardState).toMatchObject({ term: 1, vote: 'a' });
    net.inject({ type: 'vote', from: id('c'), to: id('b'), term: asTerm(1), lastLogIndex: asIndex(5), lastLogTerm: asTerm(1), transfer: false });
    expect(net.take(() => true).map((m) => m.type === 'voteResponse' && m.reject)).toEqual([true]);
    net.inject({ type: 'vote', from: id('a'), to: id('b'), term: asTerm(1), lastLogIndex: asIndex(1), lastLogTerm: asTerm(1), transfer: false });
    expect(net.take(() => true).map((m) => m.type === 'voteResponse' && m.reject)).toEqual([false]); // a repeat for a is fine
  });

  it('restart from a snapshot and entries preserves commit, log and applied state', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    for (const value of ['x', 'y', 'z']) {
      net.propose('a', value);
    }
    net.stabilize();
    net.compact('b', 3, text('state@3'));
    const before = net.core('b').status();
    net.restart('b');
    const after = net.core('b').status();
    expect(after).toMatchObject({ term: before.term, commit: before.commit, applied: before.applied, lastIndex: before.lastIndex });
    expect(net.core('b').hasReady()).toBe(false);
    net.propose('a', 'w');
    net.stabilize();
    expect(net.appliedTexts('b')).toEqual(['x', 'y', 'z', 'w']);
  });

  it('restart refuses an inconsistent initial state', () => {
    const config = defaultRaftConfig(id('a'), () => 0);
    expect(() => createRaftCore(config, initial({ hardState: { term: asTerm(2), vote: id('a'), commit: asIndex(9) } })))
      .toThrow(/recovered commit 9 is beyond the last entry 3/);
    expect(() => createRaftCore(config, initial({ applied: asIndex(3) }))).toThrow(/recovered applied 3 is outside/);
    expect(() => createRaftCore(config, initial({ entries: [entry(1, 1), entry(3, 1)] }))).toThrow(/not contiguous/);
    expect(() => createRaftCore(config, initial({ hardState: { term: asTerm(1), vote: id('a'), commit: asIndex(2) } })))
      .toThrow(/recovered term 1 is below the last entry's 2/);
    expect(() => createRaftCore({ ...config, heartbeatTicks: 10 }, initial())).toThrow(/heartbeatTicks \(10\) must be below/);
    expect(() => createRaftCore({ ...config, random: () => 1 }, initial())).toThrow(/outside \[0, 1\)/);
  });

  it('defaultRaftConfig matches the documented defaults', () => {
    const config = defaultRaftConfig(id('a'), () => 0.5);
    expect({ ...config, random: undefined }).toEqual({
      id: 'a', random: undefined, electionTicks: 10, heartbeatTicks: 1, preVote: true, checkQuorum: true,
      maxInflightMessages: 256, maxMessageBytes: 1024 * 1024, maxUncommittedBytes: 64 * 1024 * 1024, snapshotChunkBytes: 512 * 1024,
    });
  });

  it('a member randomizes its election timeout in [electionTicks, 2 * electionTicks)', () => {
    for (const [draw, expected] of [[0, 10], [0.55, 15], [0.999, 19]] as const) {
      const core = createRaftCore({ ...defaultRaftConfig(id('a'), () => draw) }, initial({ entries: [], hardState: { term: asTerm(0), vote: id(''), commit: asIndex(0) }, applied: asIndex(0), snapshot: { meta: { index: asIndex(0), term: asTerm(0), conf: { voters: [id('a')], learners: [] } }, data: text('') } }));
      let ticks = 0;
      while (core.status().role === 'follower' && ticks < 100) {
        core.tick();
        ticks++;
      }
      expect(ticks).toBe(expected);
    }
  });
});
