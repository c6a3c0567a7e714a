import { describe as suite, expect, it } from 'vitest';
import { TestNetwork, id } from './test-network.js';

suite('election', () => {
  it('election single voter becomes leader on its own and commits its empty entry', () => {
    const net = new TestNetwork(['a']);
    net.tick('a', 10);
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
    }
  });
});
