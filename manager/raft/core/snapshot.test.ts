import { describe as suite, expect, it } from 'vitest';
import { asIndex, asTerm } from './invariant.js';
import { TestNetwork, id, text } from './test-network.js';

/** a leads a, b, c; c was cut off while a committed `count` entries and compacted them into `data`. */
function laggingFollower(data: string, count = 5): TestNetwork {
  const net = new TestNetwork(['a', 'b', 'c'], { snapshotChunkBytes: 4 });
  net.elect('a');
  net.isolate('c');
  for (let i = 0; i < count; i++) {
    net.propose('a', `v${i}`);
  }
  net.stabilize();
  net.compact('a', 1 + count, text(data));
  net.takeLog();
  net.heal();
  return net;
}

const chunkLines = (lines: string[]) => lines.filter((line) => line.includes('snapshot') || line.includes('a->c append') || line.includes('c->a'));

suite('snapshots', () => {
  it('snapshot streaming: a follower behind the compaction point receives the snapshot in chunks', () => {
    const net = laggingFollower('0123456789');
    net.tick('a'); // heartbeat -> c answers -> a probes -> c's next is compacted
    net.stabilize();
    expect(chunkLines(net.takeLog())).toEqual([
      'c->a heartbeatResponse t1',
      'a->c append t1 prev=6@1 [] commit=6',
      'c->a appendResponse t1 REJECT hint index=1@1', // entry 2 onward is compacted on a
      'a->c snapshotChunk t1 snap=6@1 offset=0 bytes=4',
      'a->c snapshotChunk t1 snap=6@1 offset=4 bytes=4',
      'a->c snapshotChunk t1 snap=6@1 offset=8 bytes=2 last',
      'c->a snapshotResponse t1 snap=6 offset=4',
      'c->a snapshotResponse t1 snap=6 offset=8',
      'c->a appendResponse t1 index=6',
      'a->c append t1 prev=6@1 [] commit=6',
      'c->a appendResponse t1 index=6',
    ]);
    const c = net.member('c');
    expect(new TextDecoder().decode(c.installedSnapshot?.data)).toBe('0123456789');
    expect(c.installedSnapshot?.meta).toEqual({ index: 6, term: 1, conf: { voters: ['a', 'b', 'c'], learners: [] } });
    expect(c.disk.snapshot.meta.index).toBe(6);
    expect(c.core.status()).toMatchObject({ commit: 6, applied: 6, lastIndex: 6 });
    net.propose('a', 'after');
    net.stabilize();
    expect(net.appliedTexts('c')).toEqual(['after']);
    expect(net.core('a').status().progress.get(id('c'))).toMatchObject({ state: 'replicate', match: 7 });
  });

  it('snapshot streaming: a dropped chunk is resent from the offset the follower holds', () => {
    const net = laggingFollower('0123456789abcdef');
    let dropped = false;
    net.drop = (message) => {
      if (message.type === 'snapshotChunk' && message.offset === 4 && !dropped) {
        dropped = true;
        return true;
      }
      return false;
    };
    net.tick('a');
    net.stabilize();
    expect(chunkLines(net.takeLog())).toEqual([
      'c->a heartbeatResponse t1',
      'a->c append t1 prev=6@1 [] commit=6',
      'c->a appendResponse t1 REJECT hint index=1@1', // entry 2 onward is compacted on a
      'a->c snapshotChunk t1 snap=6@1 offset=0 bytes=4',
      'DROP a->c snapshotChunk t1 snap=6@1 offset=4 bytes=4',
      'a->c snapshotChunk t1 snap=6@1 offset=8 bytes=4',
      'a->c snapshotChunk t1 snap=6@1 offset=12 bytes=4 last',
      'c->a snapshotResponse t1 snap=6 offset=4',
      'c->a snapshotResponse t1 REJECT snap=6 offset=4', // gap at 8: resume from 4
      'c->a snapshotResponse t1 REJECT snap=6 offset=4', // same gap again: no second rewind
      'a->c snapshotChunk t1 snap=6@1 offset=4 bytes=4',
      'a->c snapshotChunk t1 snap=6@1 offset=8 bytes=4',
      'a->c snapshotChunk t1 snap=6@1 offset=12 bytes=4 last',
      'c->a snapshotResponse t1 snap=6 offset=8',
      'c->a snapshotResponse t1 snap=6 offset=12',
      'c->a appendResponse t1 index=6',
      'a->c append t1 prev=6@1 [] commit=6',
      'c->a appendResponse t1 index=6',
    ]);
    expect(new TextDecoder().decode(net.member('c').installedSnapshot?.data)).toBe('0123456789abcdef');
  });

  it('snapshot streaming: a lost last chunk is resent after an election timeout without progress', () => {
    const net = laggingFollower('0123456789');
    let dropped = false;
    net.drop = (message) => {
      if (message.type === 'snapshotChunk' && message.last && !dropped) {
        dropped = true;
        return true;
      }
      return false;
    };
    net.tick('a');
    net.stabilize();
    expect(net.member('c').installedSnapshot).toBeUndefined();
    net.takeLog();
    net.tick('a', 10);
    net.stabilize();
    expect(net.takeLog().filter((line) => line.startsWith('a->c snapshotChunk'))).toEqual([
      'a->c snapshotChunk t1 snap=6@1 offset=8 bytes=2 last',
    ]);
    expect(net.member('c').core.status()).toMatchObject({ commit: 6, applied: 6 });
  });

  it('snapshot streaming keeps at most the chunk window in flight', () => {
    const net = laggingFollower('x'.repeat(40));
    net.drop = (message) => message.type === 'snapshotResponse';
    net.tick('a');
    net.stabilize();
    const chunks = net.takeLog().filter((line) => line.includes('snapshotChunk'));
    expect(chunks).toHaveLength(4); // SNAPSHOT_WINDOW_CHUNKS
  });

  it('a snapshot whose last entry the follower already has only moves its commit (log kept)', () => {
    const net = new TestNetwork(['a', 'b']);
    net.setLog('b', [1, 1, 1], 1, 1);
    net.inject({
      type: 'snapshotChunk', from: id('a'), to: id('b'), term: asTerm(1), offset: 0, data: text('s'), last: true,
      meta: { index: asIndex(2), term: asTerm(1), conf: { voters: [id('a'), id('b')], learners: [] } },
    });
    expect(net.core('b').status()).toMatchObject({ commit: 2, lastIndex: 3 });
    expect(net.member('b').installedSnapshot).toBeUndefined();
    expect(net.diskTerms('b')).toEqual([1, 1, 1]);
  });

  it('a snapshot that conflicts with the follower log replaces the log', () => {
    const net = new TestNetwork(['a', 'b']);
    net.setLog('b', [1, 1, 1], 1, 1);
    net.inject({
      type: 'snapshotChunk', from: id('a'), to: id('b'), term: asTerm(2), offset: 0, data: text('s'), last: true,
      meta: { index: asIndex(2), term: asTerm(2), conf: { voters: [id('a'), id('b')], learners: [] } },
    });
    expect(net.core('b').status()).toMatchObject({ commit: 2, lastIndex: 2, applied: 2 });
    expect(net.member('b').disk.snapshot.meta).toMatchObject({ index: 2, term: 2 });
    expect(net.diskTerms('b')).toEqual([]);
  });

  it('a snapshot older than the commit index is answered with the commit index', () => {
    const net = new TestNetwork(['a', 'b']);
    net.setLog('b', [1, 1, 1], 1, 3);
    net.inject({
      type: 'snapshotChunk', from: id('a'), to: id('b'), term: asTerm(1), offset: 0, data: text('s'), last: true,
      meta: { index: asIndex(2), term: asTerm(1), conf: { voters: [id('a'), id('b')], learners: [] } },
    });
    expect(net.takeLog().slice(-1)).toEqual(['INJECT a->b snapshotChunk t1 snap=2@1 offset=0 bytes=1 last']);
    expect(net.take(() => true).map((message) => message.type === 'appendResponse' && message.index)).toEqual([3]);
  });

  it('compaction: stale and unapplied compactions', () => {
    const net = new TestNetwork(['a']);
    net.elect('a');
    net.propose('a', 'x');
    net.compact('a', 2, text('s'));
    expect(() => net.core('a').compact(asIndex(1), text('older'))).not.toThrow();
    const result = net.core('a').propose(text('y'));
    expect(result.ok).toBe(true);
    // Index 3 commits once its write is reported (advance); it is then handed out but not applied until advance.
    net.core('a').advance(net.core('a').ready());
    const ready = net.core('a').ready();
    expect(ready.committedEntries.map((entry) => entry.index)).toEqual([3]);
    expect(() => net.core('a').compact(asIndex(3), text('too early'))).toThrow(/only 2 is applied/);
    net.core('a').advance(ready);
    expect(() => net.core('a').compact(asIndex(3), text('now'))).not.toThrow();
  });
});
