/**
 * The pure Raft core's public face: the types of types.ts, the factory, the default
 * configuration and the membership-change codec. Nothing here performs I/O.
 */
export * from './types.js';
export { createRaftCore, defaultRaftConfig } from './core.js';
export { decodeConfChange, encodeConfChange, PROMOTE_MAX_LAG_ENTRIES } from './conf-change.js';
export { RaftInvariantError } from './invariant.js';
