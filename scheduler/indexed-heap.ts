/**
 * A binary min-heap that knows where each item is, so an item whose key changed can be moved
 * (update) or taken out (remove) in O(log n). Items are compared by identity; an item is in at
 * most one position.
 */
export class IndexedHeap<T> {
  private readonly items: T[] = [];
  private readonly positions = new Map<T, number>();

  /** `before(a, b)` is true when a must come out before b; it must be a strict total order. */
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  has(item: T): boolean {
    return this.positions.has(item);
  }

  push(item: T): void {
    if (this.positions.has(item)) throw new Error('IndexedHeap.push: item already in the heap');
    this.items.push(item);
    this.positions.set(item, this.items.length - 1);
    this.siftUp(this.items.length - 1);
  }

  /** Restores order after the key of `item` changed. */
  update(item: T): void {
    const index = this.position(item);
    this.siftUp(index);
    this.siftDown(this.position(item));
  }

  remove(item: T): void {
    const index = this.position(item);
    const last = this.items.pop() as T;
    this.positions.delete(item);
    if (index === this.items.length) return;
    this.items[index] = last;
    this.positions.set(last, index);
    this.siftUp(index);
    this.siftDown(this.position(last));
  }

  private position(item: T): number {
    const index = this.positions.get(item);
    if (index === undefined) throw new Error('IndexedHeap: item not in the heap');
    return index;
  }

  private at(index: number): T {
    return this.items[index] as T;
  }

  private swap(i: number, j: number): void {
    const a = this.at(i);
    const b = this.at(j);
    this.items[i] = b;
    this.items[j] = a;
    this.positions.set(b, i);
    this.positions.set(a, j);
  }

  private siftUp(start: number): void {
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(this.at(index), this.at(parent))) return;
      this.swap(index, parent);
      index = parent;
    }
  }

  private siftDown(start: number): void {
    let index = start;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let first = index;
      if (left < this.items.length && this.before(this.at(left), this.at(first))) first = left;
      if (right < this.items.length && this.before(this.at(right), this.at(first))) first = right;
      if (first === index) return;
      this.swap(index, first);
      index = first;
    }
  }
}
