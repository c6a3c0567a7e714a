import { describe as suite, expect, it } from 'vitest';
import { asTerm } from './invariant.js';
import { TestNetwork, id } from './test-network.js';

/** Ticks everyone once and delivers everything, `rounds` times. */
function run(net: TestNetwork, rounds: number): void {
  for (let round = 0; round < rounds; round++) {
    net.tickAll();
    net.stabilize();
  }
}

suite('election', () => {
  it('election single voter becomes leader on its own and commits its empty entry', () => {
    const net = new TestNetwork(['a']);
    net.tick('a', 9);
    expect(net.core('a').status().role).toBe('follower');
    net.tick('a', 1);
    const status = net.core('a').status();
    expect(status.role).toBe('leader');
    expect(status.term).toBe(1);
    expect(status.commit).toBe(1);
    expect(net.member('a').disk.hardState).toEqual({ term: 1, vote: 'a', commit: 1 });
  });

  it('election three voters: transcript of pre-vote, vote and the first append', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.tick('a', 10);
    net.stabilize();
    expect(net.takeLog()).toEqual([
      'a->b preVote t1 last=0@0',
      'a->c preVote t1 last=0@0',
      'b->a preVoteResponse t1',
      'c->a preVoteResponse t1',
      'a->b vote t1 last=0@0',
      'a->c vote t1 last=0@0',
      'b->a voteResponse t1',
      'c->a voteResponse t1',
      'a->b append t1 prev=0@0 [1@1] commit=0',
      'a->c append t1 prev=0@0 [1@1] commit=0',
      'b->a appendResponse t1 index=1',
      'c->a appendResponse t1 index=1',
      'a->b append t1 prev=1@1 [] commit=1',
      'a->c append t1 prev=1@1 [] commit=1',
      'b->a appendResponse t1 index=1',
      'c->a appendResponse t1 index=1',
    ]);
    for (const name of ['a', 'b', 'c']) {
      expect(net.core(name).status()).toMatchObject({ term: 1, leader: 'a', commit: 1 });
      expect(net.member(name).disk.hardState.commit).toBe(1);
    }
    expect(net.member('b').disk.hardState.vote).toBe('a');
  });

  it('election five voters wins with three votes while two are down', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e']);
    net.isolate('d');
    net.isolate('e');
    net.elect('a');
    expect(net.core('a').status().term).toBe(1);
    for (const name of ['b', 'c']) {
      expect(net.leaderOf(name)).toBe('a');
    }
    expect(net.leaderOf('d')).toBe('');
  });

  it('election five voters cannot be won with two votes', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e']);
    net.isolate('c');
    net.isolate('d');
    net.isolate('e');
    net.timeout('a');
    net.stabilize();
    expect(net.core('a').status().role).toBe('preCandidate');
    expect(net.core('a').status().term).toBe(0);
  });

  it('election without pre-vote: a candidate votes for itself in a new term', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { preVote: false });
    net.tick('a', 10);
    expect(net.takeLog()).toEqual([]);
    net.deliverOnce();
    expect(net.takeLog()).toEqual(['a->b vote t1 last=0@0', 'a->c vote t1 last=0@0']);
    net.stabilize();
    expect(net.core('a').status().role).toBe('leader');
  });

  it('pre-vote keeps a partitioned member from inflating its term and disrupting the leader', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('c');
    run(net, 100);
    expect(net.core('c').status()).toMatchObject({ term: 1, role: 'preCandidate' });
    net.heal();
    run(net, 30);
    expect(net.core('a').status()).toMatchObject({ role: 'leader', term: 1 });
    expect(net.core('c').status()).toMatchObject({ role: 'follower', term: 1, leader: 'a' });
  });

  it('without pre-vote a partitioned member inflates its term and deposes the leader on return', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    net.elect('a');
    net.isolate('c');
    run(net, 100);
    expect(net.core('c').status().term).toBeGreaterThan(5);
    net.heal();
    run(net, 30);
    expect(net.core('a').status().term).toBeGreaterThan(5);
  });

  it('check-quorum: a leader that hears from no majority for an election timeout steps down', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    run(net, 25);
    expect(net.core('a').status().role).toBe('leader'); // heartbeats keep it active
    net.isolate('a');
    for (let i = 0; i < 20 && net.core('a').status().role === 'leader'; i++) {
      net.tick('a');
    }
    expect(net.core('a').status()).toMatchObject({ role: 'follower', leader: '', term: 1 });
  });

  it('check-quorum off: an isolated leader keeps believing it leads', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { checkQuorum: false });
    net.elect('a');
    net.isolate('a');
    net.tick('a', 40);
    expect(net.core('a').status().role).toBe('leader');
  });

  it('leader stickiness: a follower that hears from the leader ignores a vote request', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { preVote: false });
    net.elect('a');
    net.isolate('c', ['a']); // c cannot hear the leader, b still does
    net.timeout('c');
    net.stabilize();
    expect(net.takeLog().filter((line) => line.startsWith('c->b'))).toEqual(['c->b vote t2 last=1@1']);
    // b ignored it: no answer, no term change.
    expect(net.core('b').status()).toMatchObject({ term: 1, leader: 'a' });
    expect(net.core('c').status()).toMatchObject({ term: 2, role: 'candidate' });
  });

  it('election safety: a candidate with a stale log cannot win (leader completeness)', () => {
    // Without check-quorum there is no leader lease, so b answers c instead of ignoring it.
    const net = new TestNetwork(['a', 'b', 'c'], { checkQuorum: false });
    net.elect('a');
    net.isolate('c');
    net.propose('a', 'x');
    net.stabilize();
    expect(net.core('b').status().commit).toBe(2);
    net.heal();
    net.isolate('a'); // the leader dies
    net.takeLog();
    net.timeout('c');
    net.stabilize();
    expect(net.takeLog()).toEqual(['DROP c->a preVote t2 last=1@1', 'c->b preVote t2 last=1@1', 'b->c preVoteResponse t1 REJECT']);
    expect(net.core('c').status()).toMatchObject({ role: 'preCandidate', term: 1 }); // a might still answer
    net.timeout('b');
    net.stabilize();
    expect(net.core('b').status()).toMatchObject({ role: 'leader', term: 2 });
    net.stabilize();
    expect(net.appliedTexts('c')).toEqual(['x']);
  });

  it('a leader of an old term steps down when it hears the new term', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    run(net, 12); // b (timeout 11) campaigns once c's lease (10) expired
    expect(net.core('b').status()).toMatchObject({ role: 'leader', term: 2 });
    net.heal();
    net.tick('a'); // a heartbeat of term 1
    net.stabilize();
    expect(net.takeLog()).toContain('b->a appendResponse t2 index=2');
    expect(net.core('a').status()).toMatchObject({ role: 'follower', term: 2 });
    run(net, 3);
    expect(net.leaderOf('a')).toBe('b');
  });

  it('only voters vote: a learner gets no vote request and its answer would not count', () => {
    const net = new TestNetwork(['a', 'b'], {}, ['l']);
    net.isolate('b');
    net.tick('a', 10);
    net.stabilize();
    const log = net.takeLog();
    expect(log.some((line) => line.includes('->l'))).toBe(false);
    expect(net.core('a').status().role).toBe('preCandidate');
    net.tick('l', 30);
    expect(net.core('l').status()).toMatchObject({ role: 'follower', term: 0 });
    // Even an unsolicited grant from the learner does not complete a's majority of a and b.
    net.inject({ type: 'preVoteResponse', from: id('l'), to: id('a'), term: asTerm(1), reject: false });
    expect(net.core('a').status().role).toBe('preCandidate');
  });
});
