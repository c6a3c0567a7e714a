import { describe, expect, it } from 'vitest';
import { checkLinearizability } from './linearizability.js';
import { kvModel, type KvInput, type KvOperation, type KvOutput } from './kv-model.js';
import { Prng } from './prng.js';

/** An operation before its id is assigned (Omit distributed over the returned/pending union). */
type Unnumbered = KvOperation extends infer Each ? (Each extends KvOperation ? Omit<Each, 'id'> : never) : never;

/** A tiny history builder: times are explicit, ids are assigned in order. */
function history(...operations: Unnumbered[]): KvOperation[] {
  return operations.map((operation, id) => ({ ...operation, id }) as KvOperation);
}
function done(clientId: string, invokeTime: number, returnTime: number, input: KvInput, output: KvOutput): Unnumbered {
  return { clientId, invokeTime, returnTime, input, output, status: 'returned' };
}
function pending(clientId: string, invokeTime: number, input: KvInput): Unnumbered {
  return { clientId, invokeTime, input, status: 'pending' };
}
const put = (key: string, value: string): KvInput => ({ kind: 'put', key, value });
const get = (key: string): KvInput => ({ kind: 'get', key });
const cas = (key: string, expected: string | undefined, value: string): KvInput => ({ kind: 'cas', key, expected, value });
const ok: KvOutput = { kind: 'put' };
const saw = (value: string | undefined): KvOutput => ({ kind: 'get', value });
const swapped = (result: boolean): KvOutput => ({ kind: 'cas', swapped: result });

function verdict(operations: KvOperation[], maxStepsPerPartition?: number): string {
  return checkLinearizability(kvModel, operations, maxStepsPerPartition === undefined ? {} : { maxStepsPerPartition }).kind;
}

describe('linearizability checker', () => {
  it('accepts a sequential history and an empty one', () => {
    expect(verdict([])).toBe('linearizable');
    expect(verdict(history(done('a', 0, 1, put('x', '1'), ok), done('a', 2, 3, get('x'), saw('1')), done('b', 4, 5, get('y'), saw(undefined))))).toBe('linearizable');
  });

  it('rejects a stale read after a completed write', () => {
    const operations = history(done('a', 0, 1, put('x', '1'), ok), done('a', 2, 3, put('x', '2'), ok), done('b', 4, 5, get('x'), saw('1')));
    const result = checkLinearizability(kvModel, operations);
    expect(result.kind).toBe('not_linearizable');
    if (result.kind === 'not_linearizable') {
      expect(result.partitionKey).toBe('x');
      expect(result.explanation).toContain('get(x) -> 1');
    }
  });

  it('rejects a lost acknowledged write', () => {
    expect(verdict(history(done('a', 0, 1, put('x', '1'), ok), done('b', 2, 3, get('x'), saw(undefined))))).toBe('not_linearizable');
  });

  it('accepts a read concurrent with a write seeing either value, but not flip-flopping', () => {
    expect(verdict(history(done('a', 0, 10, put('x', '1'), ok), done('b', 1, 2, get('x'), saw(undefined)), done('b', 3, 4, get('x'), saw('1'))))).toBe('linearizable');
    expect(verdict(history(done('a', 0, 10, put('x', '1'), ok), done('b', 1, 2, get('x'), saw('1')), done('b', 3, 4, get('x'), saw(undefined))))).toBe('not_linearizable');
  });

  it('rejects two readers that see concurrent writes in opposite orders', () => {
    const operations = history(
      done('w1', 0, 10, put('x', 'a'), ok),
      done('w2', 0, 10, put('x', 'b'), ok),
      done('r1', 1, 2, get('x'), saw('a')),
      done('r1', 3, 4, get('x'), saw('b')),
      done('r2', 1, 2, get('x'), saw('b')),
      done('r2', 3, 4, get('x'), saw('a')),
    );
    expect(verdict(operations)).toBe('not_linearizable');
    // The same reads with one reader agreeing with the other are fine.
    const agreeing = operations.map((operation) => (operation.clientId === 'r2' && operation.status === 'returned' ? { ...operation, output: saw(operation.invokeTime === 1 ? 'a' : 'b') } : operation));
    expect(verdict(agreeing)).toBe('linearizable');
  });

  it('lets a pending write take effect or not, but only after its invocation and only once seen', () => {
    expect(verdict(history(pending('a', 0, put('x', '1'))))).toBe('linearizable');
    expect(verdict(history(pending('a', 0, put('x', '1')), done('b', 5, 6, get('x'), saw('1'))))).toBe('linearizable');
    expect(verdict(history(pending('a', 0, put('x', '1')), done('b', 5, 6, get('x'), saw(undefined))))).toBe('linearizable');
    expect(verdict(history(pending('a', 0, put('x', '1')), done('b', 2, 3, get('x'), saw(undefined)), done('b', 5, 6, get('x'), saw('1'))))).toBe('linearizable');
    expect(verdict(history(pending('a', 0, put('x', '1')), done('b', 2, 3, get('x'), saw('1')), done('b', 5, 6, get('x'), saw(undefined))))).toBe('not_linearizable');
    // A value cannot be seen before the write that produces it is invoked.
    expect(verdict(history(done('b', 0, 1, get('x'), saw('1')), pending('a', 2, put('x', '1'))))).toBe('not_linearizable');
  });

  it('checks compare-and-set: two sequential swaps from absent cannot both succeed', () => {
    expect(verdict(history(done('a', 0, 1, cas('x', undefined, 'a'), swapped(true)), done('b', 2, 3, cas('x', undefined, 'b'), swapped(true))))).toBe('not_linearizable');
    expect(verdict(history(done('a', 0, 5, cas('x', undefined, 'a'), swapped(true)), done('b', 1, 6, cas('x', undefined, 'b'), swapped(true))))).toBe('not_linearizable');
    expect(verdict(history(done('a', 0, 5, cas('x', undefined, 'a'), swapped(true)), done('b', 1, 6, cas('x', undefined, 'b'), swapped(false)), done('c', 7, 8, get('x'), saw('a'))))).toBe('linearizable');
    expect(verdict(history(pending('a', 0, cas('x', undefined, 'a')), done('c', 7, 8, get('x'), saw('a'))))).toBe('linearizable');
  });

  it('reports the failing key when only one partition is wrong', () => {
    const result = checkLinearizability(kvModel, history(done('a', 0, 1, put('x', '1'), ok), done('a', 2, 3, put('y', '1'), ok), done('b', 4, 5, get('y'), saw('2')), done('b', 6, 7, get('x'), saw('1'))));
    expect(result.kind === 'not_linearizable' && result.partitionKey).toBe('y');
  });

  it('says unknown, not not_linearizable, when the search budget runs out', () => {
    const result = checkLinearizability(kvModel, randomHistory(new Prng(7), 200, 8), { maxStepsPerPartition: 10 });
    expect(result.kind).toBe('unknown');
  });

  it('accepts large generated linearizable histories quickly and rejects them once one read is corrupted', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const operations = randomHistory(new Prng(seed), 400, 6);
      expect(verdict(operations)).toBe('linearizable');
      const reads = operations.filter((operation) => operation.input.kind === 'get' && operation.status === 'returned');
      const victim = reads[reads.length >> 1];
      if (victim === undefined || victim.status !== 'returned') continue;
      const corrupted = operations.map((operation) => (operation === victim ? { ...victim, output: saw('never-written') } : operation));
      expect(verdict(corrupted)).toBe('not_linearizable');
    }
  });
});

/**
 * A linearizable history by construction: each operation gets a random linearization point
 * inside its [invoke, return] interval and takes effect at that point, in point order. Some
 * writes are left pending (and may or may not have taken effect).
 */
function randomHistory(random: Prng, count: number, clients: number): KvOperation[] {
  const keys = ['x', 'y', 'z'];
  const planned = Array.from({ length: count }, (_, id) => {
    const invokeTime = random.int(count * 4) * 3;
    const point = invokeTime + 1 + random.int(20) * 3;
    const returnTime = point + 1 + random.int(20) * 3;
    const key = random.pick(keys);
    const roll = random.int(10);
    const input: KvInput = roll < 4 ? get(key) : roll < 8 ? put(key, `v${id}`) : cas(key, random.chance(0.5) ? undefined : `v${random.int(id + 1)}`, `v${id}`);
    return { id, clientId: `c${id % clients}`, invokeTime, point, returnTime, input, dropped: input.kind !== 'get' && random.chance(0.1), effective: random.chance(0.5) };
  });
  const store = new Map<string, string>();
  const operations: KvOperation[] = [];
  for (const operation of [...planned].sort((left, right) => left.point - right.point)) {
    const { id, clientId, invokeTime, returnTime, input } = operation;
    if (operation.dropped) {
      if (operation.effective) applyToStore(store, input);
      operations.push({ id, clientId, invokeTime, input, status: 'pending' });
      continue;
    }
    operations.push({ id, clientId, invokeTime, returnTime, input, status: 'returned', output: applyToStore(store, input) });
  }
  return operations;
}

function applyToStore(store: Map<string, string>, input: KvInput): KvOutput {
  const current = store.get(input.key);
  if (input.kind === 'get') return saw(current);
  if (input.kind === 'put') {
    store.set(input.key, input.value);
    return ok;
  }
  if (current !== input.expected) return swapped(false);
  store.set(input.key, input.value);
  return swapped(true);
}
