import { describe as suite, expect, it } from 'vitest';
import { TestNetwork } from './test-network.js';

suite('ReadIndex', () => {
  it('ReadIndex on a single voter is served at once at the commit index', () => {
    const net = new TestNetwork(['a']);
    net.elect('a');
    net.propose('a', 'x');
    expect(net.core('a').readIndex('r1')).toEqual({ ok: true });
    net.processReady('a');
    expect(net.member('a').readStates).toEqual([{ requestId: 'r1', index: 2 }]);
  });

  it('ReadIndex waits for a heartbeat round acknowledged by a majority of voters', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.propose('a', 'x');
    net.stabilize();
    net.takeLog();
    net.core('a').readIndex('r1');
    net.processReady('a');
    expect(net.member('a').readStates).toEqual([]);
    net.isolate('c');
    net.deliverOnce(); // heartbeats out
    expect(net.takeLog()).toEqual(['a->b heartbeat t1 commit=2 ctx=r1', 'DROP a->c heartbeat t1 commit=2 ctx=r1']);
    expect(net.member('a').readStates).toEqual([]);
    net.deliverOnce(); // b answers: a and b are a majority
    expect(net.takeLog()).toEqual(['b->a heartbeatResponse t1 ctx=r1']);
    expect(net.member('a').readStates).toEqual([{ requestId: 'r1', index: 2 }]);
  });

  it('ReadIndex confirmed for a later request releases the earlier ones too, in order', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.drop = (message) => message.type === 'heartbeatResponse';
    net.core('a').readIndex('r1');
    net.stabilize();
    net.propose('a', 'x');
    net.stabilize();
    net.drop = () => false;
    net.core('a').readIndex('r2');
    net.stabilize();
    expect(net.member('a').readStates).toEqual([{ requestId: 'r1', index: 1 }, { requestId: 'r2', index: 2 }]);
  });

  it('ReadIndex is not served before the leader commits an entry of its term', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.propose('a', 'x');
    net.stabilize();
    // b becomes leader but its empty entry of term 2 cannot commit yet.
    net.drop = (message) => message.type === 'append';
    net.isolate('a');
    for (let tick = 0; tick < 12; tick++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.core('b').status()).toMatchObject({ role: 'leader', term: 2, commit: 2, lastIndex: 3 });
    net.takeLog();
    expect(net.core('b').readIndex('r1')).toEqual({ ok: true });
    net.stabilize();
    expect(net.takeLog().filter((line) => line.includes('ctx=r1'))).toEqual([]);
    expect(net.member('b').readStates).toEqual([]);
    net.drop = () => false;
    net.tickAll();
    net.stabilize();
    // Released only after index 3 (term 2) committed, at that commit index.
    expect(net.member('b').readStates).toEqual([{ requestId: 'r1', index: 3 }]);
  });

  it('ReadIndex on a deposed leader that does not know it yet is never served', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    for (let tick = 0; tick < 12; tick++) {
      net.tickAll();
      net.stabilize();
      if (net.core('b').status().role === 'leader') break;
    }
    expect(net.core('b').status()).toMatchObject({ role: 'leader', term: 2 });
    net.propose('b', 'newer');
    net.stabilize();
    expect(net.core('a').status().role).toBe('leader'); // it still believes it leads
    expect(net.core('a').readIndex('stale')).toEqual({ ok: true });
    net.stabilize();
    net.heal();
    net.tick('a');
    net.stabilize();
    expect(net.core('a').status()).toMatchObject({ role: 'follower', term: 2 });
    expect(net.member('a').readStates).toEqual([]);
  });

  it('ReadIndex with five voters needs two acknowledgements besides the leader', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e']);
    net.elect('a');
    net.isolate('c');
    net.isolate('d');
    net.isolate('e');
    net.core('a').readIndex('r1');
    net.stabilize();
    expect(net.member('a').readStates).toEqual([]); // a and b only
    net.heal();
    net.isolate('d');
    net.isolate('e');
    net.tick('a'); // the periodic heartbeat carries the pending read again
    net.stabilize();
    expect(net.member('a').readStates).toEqual([{ requestId: 'r1', index: 1 }]);
  });

  it('ReadIndex acknowledgements from learners do not count', () => {
    const net = new TestNetwork(['a', 'b'], {}, ['l']);
    net.elect('a');
    net.isolate('b');
    net.core('a').readIndex('r1');
    net.stabilize();
    expect(net.takeLog()).toContain('l->a heartbeatResponse t1 ctx=r1');
    expect(net.member('a').readStates).toEqual([]);
    net.heal();
    net.tick('a');
    net.stabilize();
    expect(net.member('a').readStates).toEqual([{ requestId: 'r1', index: 1 }]);
  });
});
