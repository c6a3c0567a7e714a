/**
 * Assertions and branded-number helpers for the Raft core. An assertion failure is a bug in the
 * core or in its driver: it throws loudly rather than letting a replica diverge.
 */
import type { LogIndex, Term } from './types.js';

/** Thrown when an invariant of the core does not hold. Never caught inside the core. */
export class RaftInvariantError extends Error {
  override readonly name = 'RaftInvariantError';
}

/** Crashes with `message` unless `condition` holds. */
export function assert(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new RaftInvariantError(`raft invariant violated: ${typeof message === 'string' ? message : message()}`);
  }
}

/** Exhaustiveness check for switches over unions. */
export function unreachable(value: never): never {
  throw new RaftInvariantError(`raft invariant violated: unexpected value ${JSON.stringify(value)}`);
}

export function asIndex(value: number): LogIndex {
  return value as LogIndex;
}

export function asTerm(value: number): Term {
  return value as Term;
}

export function maxIndex(a: LogIndex, b: LogIndex): LogIndex {
  return (a > b ? a : b);
}

export function minIndex(a: LogIndex, b: LogIndex): LogIndex {
  return (a < b ? a : b);
}
