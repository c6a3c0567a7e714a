/**
 * The sequential specification of the simulated key-value store, for the linearizability checker:
 * put(k, v), get(k) -> v | undefined, cas(k, expected, v) -> swapped. Each key is an independent
 * object, so histories are checked per key.
 */

import type { Model, Observed, Operation } from './linearizability.js';

export type KvInput =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'get'; key: string }
  /** Sets `value` only when the current value equals `expected` (undefined: key absent). */
  | { kind: 'cas'; key: string; expected: string | undefined; value: string };

export type KvOutput = { kind: 'put' } | { kind: 'get'; value: string | undefined } | { kind: 'cas'; swapped: boolean };

export type KvOperation = Operation<KvInput, KvOutput>;

/** The value of one key; undefined when absent. */
type KvState = string | undefined;

const ABSENT_KEY = '\u0000absent';

/** The checker's model of one key. */
export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => undefined,
  step(state, input, observed) {
    switch (input.kind) {
      case 'put':
        return { ok: !observed.returned || observed.output.kind === 'put', state: input.value };
      case 'get':
        return { ok: !observed.returned || (observed.output.kind === 'get' && observed.output.value === state), state };
      case 'cas': {
        const swapped = state === input.expected;
        const ok = !observed.returned || (observed.output.kind === 'cas' && observed.output.swapped === swapped);
        return { ok, state: swapped ? input.value : state };
      }
      default:
        return assertNever(input);
    }
  },
  stateKey: (state) => (state === undefined ? ABSENT_KEY : `=${state}`),
  partitionKey: (input) => input.key,
  pendingIsInvisible: (input) => input.kind === 'get',
  describe: describeKv,
};

/** One line per operation, e.g. `put(x, c1-3) -> ok`, `get(x) -> undefined`, `cas(x, a, b) -> pending`. */
export function describeKv(input: KvInput, observed: Observed<KvOutput>): string {
  const call =
    input.kind === 'put' ? `put(${input.key}, ${input.value})` : input.kind === 'get' ? `get(${input.key})` : `cas(${input.key}, ${String(input.expected)}, ${input.value})`;
  if (!observed.returned) return `${call} -> pending`;
  const output = observed.output;
  const shown = output.kind === 'put' ? 'ok' : output.kind === 'get' ? String(output.value) : String(output.swapped);
  return `${call} -> ${shown}`;
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
