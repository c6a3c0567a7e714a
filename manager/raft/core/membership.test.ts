import { describe as suite, expect, it } from 'vitest';
import { decodeConfChange, encodeConfChange, PROMOTE_MAX_LAG_ENTRIES } from './conf-change.js';
import { TestNetwork, id, text } from './test-network.js';
import type { ConfChange } from './types.js';

function run(net: TestNetwork, rounds: number): void {
  for (let round = 0; round < rounds; round++) {
    net.tickAll();
    net.stabilize();
  }
}

function change(net: TestNetwork, leader: string, confChange: ConfChange): void {
  const result = net.core(leader).proposeConfChange(confChange);
  expect(result).toMatchObject({ ok: true });
  net.stabilize();
}

/** a, b, c voters led by a, plus d, a new member that knows no configuration, added as a learner. */
function withLearner(): TestNetwork {
  const net = new TestNetwork(['a', 'b', 'c']);
  net.elect('a');
  net.propose('a', 'before');
  net.add('d', { voters: [], learners: [] });
  change(net, 'a', { type: 'addLearner', member: id('d') });
  return net;
}

suite('membership', () => {
  it('membership conf change codec round-trips and rejects malformed data', () => {
    for (const confChange of [
      { type: 'addLearner', member: id('x') },
      { type: 'promoteLearner', member: id('y') },
      { type: 'removeMember', member: id('z') },
    ] as const) {
      expect(decodeConfChange(encodeConfChange(confChange))).toEqual(confChange);
    }
    expect(() => decodeConfChange(text('{'))).toThrow(/^cannot decode conf change: not UTF-8 JSON/);
    expect(() => decodeConfChange(text('{"type":"addVoter","member":"x"}'))).toThrow(/unknown type "addVoter"/);
    expect(() => decodeConfChange(text('{"type":"addLearner","member":""}'))).toThrow(/member must be a non-empty string/);
  });

  it('a learner receives the log, applies it, and never campaigns', () => {
    const net = withLearner();
    expect(net.core('a').status().conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    expect(net.core('d').status().conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    expect(net.appliedTexts('d')).toEqual(['before']);
    expect(net.core('a').status().progress.get(id('d'))).toMatchObject({ learner: true, match: 3 });
    net.isolate('d');
    net.tick('d', 100);
    expect(net.core('d').status()).toMatchObject({ role: 'follower', term: 1 });
    expect(net.inFlight.filter((message) => message.from === id('d'))).toEqual([]);
  });

  it('a learner does not count toward commit', () => {
    const net = withLearner();
    net.isolate('b');
    net.isolate('c');
    const index = net.propose('a', 'x');
    net.stabilize();
    expect(net.core('d').status().lastIndex).toBe(index); // d has it...
    expect(net.core('a').status().commit).toBe(index - 1); // ...but a and d are not a majority of a, b, c
    net.heal();
    net.stabilize();
    run(net, 1);
    expect(net.core('a').status().commit).toBe(index);
  });

  it('promote is refused while the learner lags and accepted once it caught up', () => {
    const net = withLearner();
    net.isolate('d');
    for (let i = 0; i <= PROMOTE_MAX_LAG_ENTRIES; i++) {
      net.propose('a', `e${i}`);
    }
    net.stabilize();
    const refused = net.core('a').proposeConfChange({ type: 'promoteLearner', member: id('d') });
    expect(refused).toMatchObject({ ok: false, reason: 'invalid_conf_change' });
    expect(refused.ok === false && 'message' in refused && refused.message).toMatch(/^cannot promote d: not caught up \(matched 3 of 20, 17 entries behind; at most 16 allowed\)$/);
    net.heal();
    run(net, 2);
    change(net, 'a', { type: 'promoteLearner', member: id('d') });
    run(net, 1);
    for (const name of ['a', 'b', 'c', 'd']) {
      expect(net.core(name).status().conf).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
    }
    // Four voters: a majority is three, so a with d alone cannot commit.
    net.isolate('b');
    net.isolate('c');
    const index = net.propose('a', 'x');
    net.stabilize();
    expect(net.core('a').status().commit).toBe(index - 1);
  });

  it('only one membership change may be pending at a time', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    expect(net.core('a').proposeConfChange({ type: 'addLearner', member: id('d') }).ok).toBe(true);
    expect(net.core('a').proposeConfChange({ type: 'addLearner', member: id('e') })).toMatchObject({
      ok: false, reason: 'conf_change_pending', message: expect.stringMatching(/the change at index 2 is not committed yet/),
    });
  });

  it('a new leader accepts no membership change before its first entry commits', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.drop = (message) => message.type === 'append';
    net.isolate('a');
    run(net, 12); // b times out first (11 ticks), once c's leader lease (10) is over
    expect(net.core('b').status()).toMatchObject({ role: 'leader', term: 2, commit: 1 });
    expect(net.core('b').proposeConfChange({ type: 'removeMember', member: id('a') })).toMatchObject({ reason: 'conf_change_pending' });
    net.drop = () => false;
    run(net, 1);
    expect(net.core('b').proposeConfChange({ type: 'removeMember', member: id('a') }).ok).toBe(true);
  });

  it('invalid membership changes are refused with the reason', () => {
    const net = new TestNetwork(['a']);
    net.elect('a');
    const refuse = (confChange: ConfChange) => {
      const result = net.core('a').proposeConfChange(confChange);
      return result.ok === false && 'message' in result ? `${result.reason}: ${result.message}` : JSON.stringify(result);
    };
    expect(refuse({ type: 'addLearner', member: id('a') })).toBe('invalid_conf_change: cannot add learner a: already a member');
    expect(refuse({ type: 'promoteLearner', member: id('a') })).toBe('invalid_conf_change: cannot promote a: not a learner');
    expect(refuse({ type: 'removeMember', member: id('x') })).toBe('invalid_conf_change: cannot remove x: not a member');
    expect(refuse({ type: 'removeMember', member: id('a') })).toBe('invalid_conf_change: cannot remove a: it is the last voter');
  });

  it('removing a follower shrinks the quorum and stops replication to it', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    change(net, 'a', { type: 'removeMember', member: id('c') });
    expect(net.core('a').status().conf).toEqual({ voters: ['a', 'b'], learners: [] });
    expect([...net.core('a').status().progress.keys()]).toEqual(['a', 'b']);
    net.takeLog();
    net.propose('a', 'x');
    run(net, 3);
    expect(net.takeLog().some((line) => line.includes('->c'))).toBe(false);
    expect(net.appliedTexts('b')).toEqual(['x']);
  });

  it('a leader that removes itself steps down once the removal commits, and a remaining voter takes over', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    const result = net.core('a').proposeConfChange({ type: 'removeMember', member: id('a') });
    expect(result.ok).toBe(true);
    expect(net.core('a').status().role).toBe('leader'); // still leads until it commits
    net.stabilize();
    expect(net.core('a').status()).toMatchObject({ role: 'follower', conf: { voters: ['b', 'c'], learners: [] } });
    // The followers learned the commit from the leader's last broadcast.
    expect(net.core('b').status().conf).toEqual({ voters: ['b', 'c'], learners: [] });
    run(net, 30);
    expect(net.core('b').status().role === 'leader' || net.core('c').status().role === 'leader').toBe(true);
    expect(net.core('a').status().role).toBe('follower'); // never campaigns again
    const leader = net.core('b').status().role === 'leader' ? 'b' : 'c';
    net.propose(leader, 'after');
    run(net, 1);
    expect(net.appliedTexts(leader === 'b' ? 'c' : 'b')).toEqual(['after']);
  });

  it('two voters: the leader removing itself hands the cluster to the other', () => {
    const net = new TestNetwork(['a', 'b']);
    net.elect('a');
    change(net, 'a', { type: 'removeMember', member: id('a') });
    expect(net.core('b').status().conf).toEqual({ voters: ['b'], learners: [] });
    run(net, 25);
    expect(net.core('b').status().role).toBe('leader');
  });

  it('restart rebuilds the membership from the snapshot and the committed conf entries', () => {
    const net = withLearner();
    net.compact('a', 3, text('snap'));
    change(net, 'a', { type: 'promoteLearner', member: id('d') });
    change(net, 'a', { type: 'removeMember', member: id('b') });
    net.restart('a');
    expect(net.member('a').disk.snapshot.meta.conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    expect(net.core('a').status().conf).toEqual({ voters: ['a', 'c', 'd'], learners: [] });
  });

  it('a snapshot carries the membership as of its own index, not the current one', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('c');
    net.propose('a', 'x'); // 2
    net.add('d', { voters: [], learners: [] });
    change(net, 'a', { type: 'addLearner', member: id('d') }); // 3
    net.compact('a', 2, text('snap'));
    net.heal();
    net.tick('a');
    net.stabilize();
    const c = net.member('c');
    expect(c.installedSnapshot?.meta).toEqual({ index: 2, term: 1, conf: { voters: ['a', 'b', 'c'], learners: [] } });
    expect(c.core.status().conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] }); // entry 3 applied on top
  });

  it('a member that joins with no configuration gets the leader index-0 snapshot first', () => {
    const net = withLearner();
    const lines = net.takeLog().filter((line) => line.includes('a->d') || line.includes('d->a'));
    expect(lines.slice(0, 8)).toEqual([
      'a->d append t1 prev=3@1 [] commit=3',
      'd->a appendResponse t1 REJECT hint index=0@0',
      'a->d append t1 prev=0@0 [1@1 2@1 3@1] commit=3',
      'd->a appendResponse t1 REJECT hint index=0@0', // refused even at index 0: it has no configuration
      'a->d snapshotChunk t1 snap=0@0 offset=0 bytes=0 last',
      'd->a appendResponse t1 index=0',
      'a->d append t1 prev=0@0 [1@1 2@1 3@1] commit=3',
      'd->a appendResponse t1 index=3',
    ]);
    expect(net.member('d').disk.snapshot.meta).toEqual({ index: 0, term: 0, conf: { voters: ['a', 'b', 'c'], learners: [] } });
  });
});
