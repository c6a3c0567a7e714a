import { describe, expect, it } from 'vitest';
import { IndexedHeap } from './indexed-heap.js';

/** A small seeded generator (mulberry32), so a failure replays. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('indexed heap', () => {
  it('indexed heap keeps the minimum on top through pushes, key updates and removals', () => {
    const next = generator(42);
    const heap = new IndexedHeap<{ id: number; key: number }>((a, b) => (a.key - b.key || a.id - b.id) < 0);
    const items = Array.from({ length: 200 }, (_, id) => ({ id, key: Math.floor(next() * 50) }));
    const present = new Set<{ id: number; key: number }>();
    for (const item of items) {
      heap.push(item);
      present.add(item);
    }
    for (let step = 0; step < 2_000; step += 1) {
      const item = items[Math.floor(next() * items.length)]!;
      const action = next();
      if (!present.has(item)) {
        heap.push(item);
        present.add(item);
      } else if (action < 0.3) {
        heap.remove(item);
        present.delete(item);
      } else {
        item.key = Math.floor(next() * 50);
        heap.update(item);
      }
      const expected = [...present].sort((a, b) => a.key - b.key || a.id - b.id)[0];
      expect(heap.peek()).toBe(expected);
      expect(heap.size).toBe(present.size);
    }
  });

  it('indexed heap refuses a duplicate push and an unknown item', () => {
    const heap = new IndexedHeap<{ key: number }>((a, b) => a.key < b.key);
    const item = { key: 1 };
    heap.push(item);
    expect(() => heap.push(item)).toThrow(/already/);
    expect(() => heap.remove({ key: 2 })).toThrow(/not in the heap/);
    heap.remove(item);
    expect(heap.peek()).toBeUndefined();
  });
});
