/**
 * A linearizability checker in the style of Wing & Gong, with Lowe's memoization, as Porcupine
 * implements it (github.com/anishathalye/porcupine).
 *
 * Input: a history of client operations, each with an invoke time and either a return time and
 * output, or no return at all ("pending": the client gave up or crashed; the operation may or may
 * not have taken effect, at any time after its invocation). Output: whether some total order of
 * the operations (1) respects real time — an operation that returned before another was invoked
 * comes first — and (2) is a legal sequential execution of the model.
 *
 * Speed: the history is split into independent partitions (P-compositionality: for a key-value
 * store each key is its own object) and each partition is searched depth-first, remembering every
 * (set of linearized operations, model state) pair already explored so no configuration is
 * visited twice. The search is bounded by `maxStepsPerPartition`; running out of budget yields
 * `unknown`, never a false `not_linearizable`.
 *
 * Equal times count as overlapping (calls sort before returns), so ties can only make a history
 * more permissive. The simulator records times from a logical clock, so it never produces ties.
 */

/** One client operation. `id` must be unique within a history. */
export type Operation<Input, Output> = {
  id: number;
  clientId: string;
  input: Input;
  invokeTime: number;
} & ({ status: 'returned'; returnTime: number; output: Output } | { status: 'pending' });

/** What the history says an operation returned: a pending operation accepts any output. */
export type Observed<Output> = { returned: true; output: Output } | { returned: false };

/** A sequential specification. States must be treated as immutable values. */
export interface Model<State, Input, Output> {
  init(): State;
  /** Applies `input` in `state`; `ok` is false when the model could not have produced `observed`. */
  step(state: State, input: Input, observed: Observed<Output>): { ok: boolean; state: State };
  /** A string that is equal for equal states (memoization key). */
  stateKey(state: State): string;
  /** Operations with different partition keys never interact (P-compositionality). */
  partitionKey(input: Input): string;
  /** True when a pending operation of this input can be dropped (it has no effect on state, e.g. a read). */
  pendingIsInvisible(input: Input): boolean;
  describe(input: Input, observed: Observed<Output>): string;
}

/** The default search budget per partition (model steps). About a second of work. */
export const DEFAULT_MAX_STEPS_PER_PARTITION = 2_000_000;

export interface CheckOptions {
  maxStepsPerPartition?: number;
}

export type CheckResult =
  | { kind: 'linearizable'; partitions: number; steps: number }
  | {
      kind: 'not_linearizable';
      partitionKey: string;
      /** The longest prefix of a linearization the search found, as operation ids in order. */
      longestPrefix: number[];
      /** The partition's operations, sorted by invoke time, for a human to read. */
      explanation: string;
    }
  | { kind: 'unknown'; partitionKey: string; reason: string };

interface Node<Input, Output> {
  operation: Operation<Input, Output> | undefined; // undefined only for the head sentinel
  isCall: boolean;
  time: number;
  match: Node<Input, Output> | undefined; // call -> its return node
  previous: Node<Input, Output> | undefined;
  next: Node<Input, Output> | undefined;
}

/** Checks a whole history; stops at the first partition that is not linearizable or times out. */
export function checkLinearizability<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): CheckResult {
  const maxSteps = options.maxStepsPerPartition ?? DEFAULT_MAX_STEPS_PER_PARTITION;
  const partitions = new Map<string, Operation<Input, Output>[]>();
  for (const operation of history) {
    if (operation.status === 'pending' && model.pendingIsInvisible(operation.input)) continue;
    const key = model.partitionKey(operation.input);
    const partition = partitions.get(key);
    if (partition === undefined) partitions.set(key, [operation]);
    else partition.push(operation);
  }
  let totalSteps = 0;
  for (const key of [...partitions.keys()].sort()) {
    const operations = partitions.get(key) ?? [];
    const result = checkPartition(model, operations, maxSteps);
    switch (result.kind) {
      case 'ok':
        totalSteps += result.steps;
        break;
      case 'violation':
        return { kind: 'not_linearizable', partitionKey: key, longestPrefix: result.longestPrefix, explanation: explain(model, operations) };
      case 'budget':
        return { kind: 'unknown', partitionKey: key, reason: `search budget of ${maxSteps} steps exhausted on ${operations.length} operations` };
      default:
        return assertNever(result);
    }
  }
  return { kind: 'linearizable', partitions: partitions.size, steps: totalSteps };
}

type PartitionResult = { kind: 'ok'; steps: number } | { kind: 'violation'; longestPrefix: number[] } | { kind: 'budget' };

/** The depth-first search over one partition (Porcupine's checkSingle). */
function checkPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  operations: readonly Operation<Input, Output>[],
  maxSteps: number,
): PartitionResult {
  const head = buildEventList(operations);
  const linearized = new Bitset(operations.length);
  const indexOf = new Map<number, number>(operations.map((operation, index) => [operation.id, index]));
  const visited = new Set<string>();
  const calls: { node: Node<Input, Output>; state: State }[] = [];
  let remainingReturned = operations.filter((operation) => operation.status === 'returned').length;
  let state = model.init();
  let node = head.next;
  let longestPrefix: number[] = [];
  let steps = 0;

  while (remainingReturned > 0) {
    if (node === undefined) throw new Error('linearizability: event list ended before every returned operation was placed');
    if (++steps > maxSteps) return { kind: 'budget' };
    const operation = node.operation as Operation<Input, Output>;
    if (node.isCall) {
      const observed: Observed<Output> = operation.status === 'returned' ? { returned: true, output: operation.output } : { returned: false };
      const outcome = model.step(state, operation.input, observed);
      const bit = indexOf.get(operation.id) as number;
      if (outcome.ok) {
        linearized.set(bit);
        const key = `${linearized.key()}|${model.stateKey(outcome.state)}`;
        if (!visited.has(key)) {
          visited.add(key);
          calls.push({ node, state });
          state = outcome.state;
          if (operation.status === 'returned') remainingReturned--;
          if (calls.length > longestPrefix.length) longestPrefix = calls.map((call) => (call.node.operation as Operation<Input, Output>).id);
          lift(node);
          node = head.next;
          continue;
        }
        linearized.clear(bit);
      }
      node = node.next;
      continue;
    }
    // A return whose call is still in the list: nothing placed so far can precede it. Backtrack.
    const top = calls.pop();
    if (top === undefined) return { kind: 'violation', longestPrefix };
    const undone = top.node.operation as Operation<Input, Output>;
    if (undone.status === 'returned') remainingReturned++;
    state = top.state;
    linearized.clear(indexOf.get(undone.id) as number);
    unlift(top.node);
    node = top.node.next;
  }
  return { kind: 'ok', steps };
}

/** Calls and returns in time order; a pending operation returns at +infinity. */
function buildEventList<Input, Output>(operations: readonly Operation<Input, Output>[]): Node<Input, Output> {
  const nodes: Node<Input, Output>[] = [];
  for (const operation of operations) {
    const call: Node<Input, Output> = { operation, isCall: true, time: operation.invokeTime, match: undefined, previous: undefined, next: undefined };
    const returnTime = operation.status === 'returned' ? operation.returnTime : Number.POSITIVE_INFINITY;
    if (returnTime < operation.invokeTime) throw new Error(`linearizability: operation ${operation.id} returns before it is invoked`);
    const result: Node<Input, Output> = { operation, isCall: false, time: returnTime, match: undefined, previous: undefined, next: undefined };
    call.match = result;
    nodes.push(call, result);
  }
  // Stable sort: by time, calls before returns at equal times (ties overlap).
  nodes.sort((left, right) => left.time - right.time || Number(right.isCall) - Number(left.isCall));
  const head: Node<Input, Output> = { operation: undefined, isCall: false, time: Number.NEGATIVE_INFINITY, match: undefined, previous: undefined, next: undefined };
  let tail = head;
  for (const node of nodes) {
    tail.next = node;
    node.previous = tail;
    tail = node;
  }
  return head;
}

/** Removes a call and its return from the list. */
function lift<Input, Output>(call: Node<Input, Output>): void {
  const match = call.match as Node<Input, Output>;
  (call.previous as Node<Input, Output>).next = call.next;
  if (call.next !== undefined) call.next.previous = call.previous;
  (match.previous as Node<Input, Output>).next = match.next;
  if (match.next !== undefined) match.next.previous = match.previous;
}

/** Puts a lifted call and its return back, in the reverse order of `lift`. */
function unlift<Input, Output>(call: Node<Input, Output>): void {
  const match = call.match as Node<Input, Output>;
  (match.previous as Node<Input, Output>).next = match;
  if (match.next !== undefined) match.next.previous = match;
  (call.previous as Node<Input, Output>).next = call;
  if (call.next !== undefined) call.next.previous = call;
}

function explain<State, Input, Output>(model: Model<State, Input, Output>, operations: readonly Operation<Input, Output>[]): string {
  return [...operations]
    .sort((left, right) => left.invokeTime - right.invokeTime)
    .map((operation) => {
      const observed: Observed<Output> = operation.status === 'returned' ? { returned: true, output: operation.output } : { returned: false };
      const until = operation.status === 'returned' ? String(operation.returnTime) : 'pending';
      return `  #${operation.id} ${operation.clientId} [${operation.invokeTime}, ${until}] ${model.describe(operation.input, observed)}`;
    })
    .join('\n');
}

/** A fixed-size set of small integers with a cheap string key for memoization. */
class Bitset {
  private readonly words: Uint32Array;

  constructor(size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32) || 1);
  }

  set(bit: number): void {
    this.words[bit >>> 5] = ((this.words[bit >>> 5] ?? 0) | (1 << (bit & 31))) >>> 0;
  }

  clear(bit: number): void {
    this.words[bit >>> 5] = ((this.words[bit >>> 5] ?? 0) & ~(1 << (bit & 31))) >>> 0;
  }

  key(): string {
    return this.words.join(',');
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
