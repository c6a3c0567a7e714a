import { describe as suite, expect, it } from 'vitest';
import { asIndex, asTerm } from './invariant.js';
import { TestNetwork, id, text } from './test-network.js';
import type { Message } from './types.js';

const appendsTo = (to: string) => (message: Message) => message.type === 'append' && message.to === to;

suite('log replication', () => {
  // Raft paper, Figure 7: the term-8 leader's log, and followers (a)-(f) that a leader change left behind.
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const figure7: Record<string, { terms: number[]; term: number }> = {
    a: { terms: [1, 1, 1, 4, 4, 5, 5, 6, 6], term: 6 },
    b: { terms: [1, 1, 1, 4], term: 4 },
    c: { terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], term: 6 },
    d: { terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], term: 7 },
    e: { terms: [1, 1, 1, 4, 4, 4, 4], term: 4 },
    f: { terms: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], term: 3 },
  };
  for (const [scenario, follower] of Object.entries(figure7)) {
    it(`replication repairs a conflicting follower log after a leader change (Figure 7 ${scenario})`, () => {
      const net = new TestNetwork(['leader', 'follower', 'voter'], { checkQuorum: false });
      net.setLog('leader', leaderLog, 7);
      net.setLog('follower', follower.terms, follower.term);
      net.setLog('voter', [], 7);
      net.elect('leader');
      net.stabilize();
      expect(net.core('leader').status().term).toBe(8);
      expect(net.diskTerms('follower')).toEqual([...leaderLog, 8]);
      expect(net.core('follower').status()).toMatchObject({ commit: 11, lastIndex: 11 });
    });
  }

  it('replication backtracks a whole term per probe with the reject hint (Figure 7 f)', () => {
    const net = new TestNetwork(['leader', 'follower', 'voter'], { checkQuorum: false });
    net.setLog('leader', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6], 7);
    net.setLog('follower', [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 3);
    net.setLog('voter', [], 7);
    net.elect('leader');
    const transcript = net.takeLog().filter((line) => /^(leader->follower append|follower->leader append)/.test(line));
    expect(transcript).toEqual([
      'leader->follower append t8 prev=10@6 [11@8] commit=0',
      // The follower's last entry with a term <= 6 is 10 (term 3); the leader's last entry with a term <= 3 is 3.
      'follower->leader appendResponse t8 REJECT hint index=10@3',
      'leader->follower append t8 prev=3@1 [4@4 5@4 6@5 7@5 8@6 9@6 10@6 11@8] commit=0',
      'follower->leader appendResponse t8 index=11',
      'leader->follower append t8 prev=11@8 [] commit=11',
      'follower->leader appendResponse t8 index=11',
    ]);
  });

  it('replication without the term hint still converges, one entry per probe', () => {
    const net = new TestNetwork(['leader', 'follower', 'voter'], { checkQuorum: false });
    net.setLog('leader', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6], 7);
    net.setLog('follower', [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 3);
    net.setLog('voter', [], 7);
    // A codec that drops the optional logTerm.
    const strip = (message: Message): Message => {
      if (message.type !== 'appendResponse') {
        return message;
      }
      const copy = { ...message };
      delete copy.logTerm;
      return copy;
    };
    net.timeout('leader');
    for (let round = 0; round < 100 && net.inFlight.length > 0; round++) {
      net.inFlight = net.inFlight.map(strip);
      net.deliverOnce();
    }
    expect(net.diskTerms('follower')).toEqual([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8]);
  });

  it('commit: a leader commits an older-term entry only through an entry of its own term (Figure 8)', () => {
    const net = new TestNetwork(['s1', 's2', 's3', 's4', 's5'], { checkQuorum: false });
    net.setLog('s1', [1, 2], 3, 1);
    net.setLog('s2', [1, 2], 2, 1);
    net.setLog('s3', [1], 2, 1);
    net.setLog('s4', [1], 3, 1);
    net.setLog('s5', [1, 3], 3, 1);
    net.drop = (message) => message.type === 'append' || message.type === 'appendResponse';
    net.elect('s1');
    expect(net.core('s1').status()).toMatchObject({ term: 4, lastIndex: 3 });
    const ack = (from: string, index: number): void =>
      net.inject({ type: 'appendResponse', from: id(from), to: id('s1'), term: asTerm(4), reject: false, index: asIndex(index) });
    // Index 2 (term 2) reaches a majority: s1, s2, s3. Counting must not commit it.
    ack('s2', 2);
    ack('s3', 2);
    expect(net.core('s1').status().commit).toBe(1);
    // Figure 8 (d): s5 could still win (s2, s3, s4 vote for its newer log) and overwrite index 2.
    // Once index 3, of term 4, is on a majority, both commit.
    ack('s2', 3);
    expect(net.core('s1').status().commit).toBe(1);
    ack('s3', 3);
    expect(net.core('s1').status().commit).toBe(3);
  });

  it('commit: Figure 8 (d) — an uncommitted older-term entry on a majority can still be overwritten', () => {
    const net = new TestNetwork(['s1', 's2', 's3', 's4', 's5'], { checkQuorum: false });
    net.setLog('s1', [1, 2], 4, 1);
    net.setLog('s2', [1, 2], 4, 1);
    net.setLog('s3', [1, 2], 4, 1);
    net.setLog('s4', [1], 4, 1);
    net.setLog('s5', [1, 3], 4, 1);
    net.isolate('s1');
    net.elect('s5');
    net.stabilize();
    for (const name of ['s2', 's3', 's4', 's5']) {
      expect(net.diskTerms(name)).toEqual([1, 3, 5]);
    }
  });

  it('a follower commits min(leader commit, last new entry): never entries not yet matched', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.setLog('b', [1, 1, 2, 2], 2, 1);
    net.inject({
      type: 'append', from: id('a'), to: id('b'), term: asTerm(3), prevLogIndex: asIndex(1), prevLogTerm: asTerm(1),
      entries: [], commit: asIndex(3),
    });
    expect(net.core('b').status()).toMatchObject({ commit: 1, lastIndex: 4, term: 3, leader: 'a' }); // 2..4 may still diverge
    net.inject({
      type: 'append', from: id('a'), to: id('b'), term: asTerm(3), prevLogIndex: asIndex(2), prevLogTerm: asTerm(1),
      entries: [{ term: asTerm(3), index: asIndex(3), type: 'normal', data: text('x') }], commit: asIndex(9),
    });
    expect(net.core('b').status()).toMatchObject({ commit: 3, lastIndex: 3 });
    expect(net.diskTerms('b')).toEqual([1, 1, 3]);
  });

  it('an append below the follower commit is answered with its commit and writes nothing', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    net.setLog('b', [1, 1, 1], 1, 3);
    expect(() => net.inject({
      type: 'append', from: id('a'), to: id('b'), term: asTerm(2), prevLogIndex: asIndex(1), prevLogTerm: asTerm(1),
      entries: [{ term: asTerm(2), index: asIndex(2), type: 'normal', data: text('x') }], commit: asIndex(2),
    })).not.toThrow(); // prevLogIndex below commit: answered with our commit, nothing written
    expect(net.diskTerms('b')).toEqual([1, 1, 1]);
    expect(net.take(() => true).map((message) => message.type === 'appendResponse' && message.index)).toEqual([3]);
  });

  it('pipelining: at most maxInflightMessages appends are unacknowledged per follower', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { maxInflightMessages: 3, maxMessageBytes: 1 });
    net.elect('a');
    for (let i = 0; i < 10; i++) {
      net.propose('a', `entry-${i}`);
    }
    const toB = net.take(appendsTo('b'));
    expect(toB.map((message) => message.type === 'append' && message.entries.map((entry) => entry.index))).toEqual([[2], [3], [4]]);
    expect(net.core('a').status().progress.get(id('b'))).toMatchObject({ state: 'replicate', match: 1, next: 5 });
    // Acknowledging the first frees one slot: exactly one more goes out.
    net.inFlight.push(toB[0]!);
    net.deliverOnce((message) => message.to === id('b'));
    net.deliverOnce((message) => message.from === id('b') && message.to === id('a'));
    const next = net.take(appendsTo('b'));
    expect(next.map((message) => message.type === 'append' && message.entries.map((entry) => entry.index))).toEqual([[5]]);
    net.inFlight = net.inFlight.filter((message) => message.to !== id('b'));
    net.isolate('b');
    net.stabilize();
    net.heal();
    // Everything to b was lost: heartbeats let the leader find out and resend.
    for (let i = 0; i < 10; i++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.appliedTexts('b')).toHaveLength(10);
  });

  it('batching: one append carries entries up to maxMessageBytes (at least one entry)', () => {
    const net = new TestNetwork(['a', 'b'], { maxMessageBytes: 10 });
    net.elect('a');
    net.isolate('b');
    net.propose('a', '1234'); // 2
    net.propose('a', '5678'); // 3
    net.propose('a', 'abcdefghijklmnop'); // 4: alone over the limit
    net.propose('a', 'xy'); // 5
    net.stabilize();
    net.heal();
    net.inFlight = [];
    net.core('a').reportUnreachable(id('b'));
    net.tick('a'); // heartbeat -> response -> probe -> replicate
    net.stabilize();
    const batches = net.takeLog()
      .filter((line) => line.startsWith('a->b append') && !line.includes('[]'))
      .map((line) => line.replace(/.*\[(.*)\].*/, '$1'));
    expect(batches.slice(-3)).toEqual(['2@1 3@1', '4@1', '5@1']);
    expect(net.appliedTexts('b')).toEqual(['1234', '5678', 'abcdefghijklmnop', 'xy']);
  });

  it('propose on a follower is refused with the leader as a hint', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    expect(net.core('b').propose(text('x'))).toEqual({ ok: false, reason: 'not_leader', leader: '' });
    net.elect('a');
    expect(net.core('b').propose(text('x'))).toEqual({ ok: false, reason: 'not_leader', leader: 'a' });
    expect(net.core('b').readIndex('r1')).toEqual({ ok: false, reason: 'not_leader', leader: 'a' });
  });

  it('flow control: proposals are refused while uncommitted bytes would exceed maxUncommittedBytes', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { maxUncommittedBytes: 10 });
    net.elect('a');
    net.isolate('a');
    expect(net.core('a').propose(text('123456')).ok).toBe(true);
    const refused = net.core('a').propose(text('123456'));
    expect(refused).toMatchObject({ ok: false, reason: 'too_many_uncommitted' });
    expect(refused.ok === false && 'message' in refused && refused.message).toMatch(/^cannot propose 6 bytes: 6 bytes are uncommitted/);
    expect(net.core('a').propose(text('1234')).ok).toBe(true); // exactly at the limit
    net.heal();
    net.tickAll();
    net.stabilize();
    expect(net.core('a').status().commit).toBe(3);
    expect(net.core('a').propose(text('123456')).ok).toBe(true);
  });

  it('a single entry above maxUncommittedBytes is accepted when nothing is uncommitted', () => {
    const net = new TestNetwork(['a'], { maxUncommittedBytes: 4 });
    net.elect('a');
    expect(net.core('a').propose(text('123456789')).ok).toBe(true);
  });
});
