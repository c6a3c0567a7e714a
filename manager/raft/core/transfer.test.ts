import { describe as suite, expect, it } from 'vitest';
import { TestNetwork, id, text } from './test-network.js';

suite('leadership transfer', () => {
  it('transfer to a caught-up voter: timeoutNow, a transfer vote that bypasses stickiness, new leader', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.takeLog();
    expect(net.core('a').transferLeadership(id('b'))).toEqual({ ok: true });
    net.stabilize();
    expect(net.takeLog().slice(0, 6)).toEqual([
      'a->b timeoutNow t1',
      'b->a vote t2 last=1@1 transfer',
      'b->c vote t2 last=1@1 transfer', // c heard from a just now, yet votes: it is a transfer
      'a->b voteResponse t2',
      'c->b voteResponse t2',
      'b->a append t2 prev=1@1 [2@2] commit=1',
    ]);
    expect(net.core('b').status()).toMatchObject({ role: 'leader', term: 2 });
    expect(net.core('a').status()).toMatchObject({ role: 'follower', leader: 'b', term: 2 });
  });

  it('transfer to a lagging voter catches it up first and refuses proposals meanwhile', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('b');
    net.propose('a', 'x');
    net.stabilize();
    net.heal();
    net.takeLog();
    expect(net.core('a').transferLeadership(id('b'))).toEqual({ ok: true });
    expect(net.core('a').propose(text('y'))).toMatchObject({ ok: false, reason: 'transfer_in_progress' });
    expect(net.core('a').proposeConfChange({ type: 'removeMember', member: id('c') })).toMatchObject({ reason: 'transfer_in_progress' });
    net.stabilize();
    const lines = net.takeLog();
    const timeoutAt = lines.indexOf('a->b timeoutNow t1');
    const caughtUpAt = lines.indexOf('b->a appendResponse t1 index=2');
    expect(caughtUpAt).toBeGreaterThanOrEqual(0);
    expect(timeoutAt).toBeGreaterThan(caughtUpAt);
    expect(net.core('b').status()).toMatchObject({ role: 'leader', term: 2 });
    expect(net.appliedTexts('b')).toEqual(['x']);
  });

  it('a transfer that does not finish within an election timeout is abandoned', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('b');
    expect(net.core('a').transferLeadership(id('b'))).toEqual({ ok: true });
    for (let tick = 0; tick < 9; tick++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.core('a').propose(text('y'))).toMatchObject({ reason: 'transfer_in_progress' });
    net.tickAll();
    net.stabilize();
    expect(net.core('a').status().role).toBe('leader');
    expect(net.core('a').propose(text('y')).ok).toBe(true);
  });

  it('transfer is refused off the leader, to itself, and to a non-voter', () => {
    const net = new TestNetwork(['a', 'b'], {}, ['l']);
    expect(net.core('a').transferLeadership(id('b'))).toEqual({ ok: false, reason: 'cannot transfer leadership to b: not the leader (leader is unknown)' });
    net.elect('a');
    expect(net.core('b').transferLeadership(id('a'))).toEqual({ ok: false, reason: 'cannot transfer leadership to a: not the leader (leader is a)' });
    expect(net.core('a').transferLeadership(id('a'))).toEqual({ ok: false, reason: 'cannot transfer leadership to a: it is already the leader' });
    expect(net.core('a').transferLeadership(id('l'))).toEqual({ ok: false, reason: 'cannot transfer leadership to l: not a voter' });
    expect(net.core('a').transferLeadership(id('zz'))).toEqual({ ok: false, reason: 'cannot transfer leadership to zz: not a voter' });
  });

  it('a learner ignores timeoutNow', () => {
    const net = new TestNetwork(['a', 'b'], {}, ['l']);
    net.elect('a');
    net.inject({ type: 'timeoutNow', from: id('a'), to: id('l'), term: net.core('a').status().term });
    expect(net.core('l').status()).toMatchObject({ role: 'follower', term: 1 });
  });
});
