/**
 * The simulator's only source of randomness: xoshiro128** seeded through splitmix32.
 *
 * One seed drives the whole world. Nothing inside the world may call Math.random or read a clock;
 * every random choice goes through a Prng so that `SEED=<n>` replays a run exactly. Subsystems
 * take their own stream with `fork(label)`, so adding a random draw in one subsystem does not
 * shift the choices of another (a seed found with an older simulator keeps mostly the same shape).
 */

const UINT32_RANGE = 0x1_0000_0000;

/** splitmix32: expands one 32-bit seed into well-mixed state words. */
function splitmix32(state: { value: number }): number {
  state.value = (state.value + 0x9e3779b9) | 0;
  let mixed = state.value;
  mixed = Math.imul(mixed ^ (mixed >>> 16), 0x85ebca6b);
  mixed = Math.imul(mixed ^ (mixed >>> 13), 0xc2b2ae35);
  return (mixed ^ (mixed >>> 16)) >>> 0;
}

/** FNV-1a over a label, used to derive forked streams. */
function hashLabel(label: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < label.length; index++) {
    hash = Math.imul(hash ^ label.charCodeAt(index), 0x01000193);
  }
  return hash >>> 0;
}

/** A deterministic pseudo-random stream. Not cryptographic; fast and well distributed. */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    const state = { value: seed >>> 0 };
    this.s0 = splitmix32(state);
    this.s1 = splitmix32(state);
    this.s2 = splitmix32(state);
    this.s3 = splitmix32(state);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // xoshiro's one forbidden state
  }

  /** The next 32 bits, as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotateLeft(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const shifted = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= shifted;
    this.s3 = rotateLeft(this.s3, 11);
    return result;
  }

  /** A float in [0, 1), like Math.random. */
  next(): number {
    return this.nextUint32() / UINT32_RANGE;
  }

  /** An integer in [0, bound). `bound` must be a positive integer. */
  int(bound: number): number {
    if (!Number.isInteger(bound) || bound <= 0) throw new Error(`Prng.int: bound must be a positive integer, got ${bound}`);
    return Math.floor(this.next() * bound);
  }

  /** An integer in [low, high], both inclusive. */
  between(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  /** True with probability `probability`. */
  chance(probability: number): boolean {
    return this.next() < probability;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined && items.length === 0) throw new Error('Prng.pick: empty array');
    return item as T;
  }

  /** A new array with the same elements in a random order (Fisher-Yates). */
  shuffled<T>(items: readonly T[]): T[] {
    const copy = items.slice();
    for (let index = copy.length - 1; index > 0; index--) {
      const other = this.int(index + 1);
      const held = copy[index] as T;
      copy[index] = copy[other] as T;
      copy[other] = held;
    }
    return copy;
  }

  /** An independent stream for a subsystem, derived from this one's next draw and a label. */
  fork(label: string): Prng {
    return new Prng((this.nextUint32() ^ hashLabel(label)) >>> 0);
  }

  /** A bound `() => number` for APIs that take a Math.random-shaped function (the Raft core's `random`). */
  asFunction(): () => number {
    return () => this.next();
  }
}

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}
