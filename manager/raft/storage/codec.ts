/** Conversions between the core's values and their wire/disk form (proto/skiff/v1/raft.proto). */
import type { RaftConfState, RaftEntry, RaftHardState, RaftMessage, RaftSnapshotMeta } from '../../../proto/skiff/v1/raft.js';
import type { ConfState, Entry, HardState, LogIndex, MemberId, Message, SnapshotMeta, Term } from '../core/types.js';

const term = (value: number): Term => value as Term;
const index = (value: number): LogIndex => value as LogIndex;
const member = (value: string): MemberId => value as MemberId;

export const entryToWire = (entry: Entry): RaftEntry => ({ term: entry.term, index: entry.index, config: entry.type === 'config', data: entry.data });
export const entryFromWire = (entry: RaftEntry): Entry => ({ term: term(entry.term), index: index(entry.index), type: entry.config ? 'config' : 'normal', data: entry.data });
export const hardStateToWire = (state: HardState): RaftHardState => ({ term: state.term, vote: state.vote, commit: state.commit });
export const hardStateFromWire = (state: RaftHardState): HardState => ({ term: term(state.term), vote: member(state.vote), commit: index(state.commit) });
export const confToWire = (conf: ConfState): RaftConfState => ({ voters: [...conf.voters], learners: [...conf.learners] });
export const confFromWire = (conf: RaftConfState | undefined): ConfState => ({ voters: (conf?.voters ?? []).map(member), learners: (conf?.learners ?? []).map(member) });
export const metaToWire = (meta: SnapshotMeta): RaftSnapshotMeta => ({ index: meta.index, term: meta.term, conf: confToWire(meta.conf) });
export const metaFromWire = (meta: RaftSnapshotMeta | undefined): SnapshotMeta => ({ index: index(meta?.index ?? 0), term: term(meta?.term ?? 0), conf: confFromWire(meta?.conf) });

const EMPTY = new Uint8Array();

function baseWire(message: Message): RaftMessage {
  return {
    type: message.type,
    from: message.from,
    to: message.to,
    term: message.term,
    logIndex: 0,
    logTerm: 0,
    transfer: false,
    reject: false,
    entries: [],
    commit: 0,
    context: '',
    snapshotMeta: undefined,
    offset: 0,
    data: EMPTY,
    last: false,
    index: 0,
  };
}

export function messageToWire(message: Message): RaftMessage {
  const wire = baseWire(message);
  switch (message.type) {
    case 'preVote':
    case 'vote':
      return { ...wire, logIndex: message.lastLogIndex, logTerm: message.lastLogTerm, transfer: message.transfer };
    case 'preVoteResponse':
    case 'voteResponse':
      return { ...wire, reject: message.reject };
    case 'append':
      return { ...wire, logIndex: message.prevLogIndex, logTerm: message.prevLogTerm, entries: message.entries.map(entryToWire), commit: message.commit };
    case 'appendResponse':
      return { ...wire, reject: message.reject, index: message.index };
    case 'heartbeat':
      return { ...wire, commit: message.commit, context: message.context };
    case 'heartbeatResponse':
      return { ...wire, context: message.context };
    case 'snapshotChunk':
      return { ...wire, snapshotMeta: metaToWire(message.meta), offset: message.offset, data: message.data, last: message.last };
    case 'snapshotResponse':
      return { ...wire, reject: message.reject, offset: message.offset, index: message.index };
    case 'timeoutNow':
      return wire;
    default: {
      const exhaustive: never = message;
      throw new Error(`assertion failed: unknown raft message ${String(exhaustive)}`);
    }
  }
}

/** Decodes a wire message; undefined for an unknown type (a newer peer), which is dropped. */
export function messageFromWire(wire: RaftMessage): Message | undefined {
  const envelope = { from: member(wire.from), to: member(wire.to), term: term(wire.term) };
  switch (wire.type) {
    case 'preVote':
    case 'vote':
      return { ...envelope, type: wire.type, lastLogIndex: index(wire.logIndex), lastLogTerm: term(wire.logTerm), transfer: wire.transfer };
    case 'preVoteResponse':
    case 'voteResponse':
      return { ...envelope, type: wire.type, reject: wire.reject };
    case 'append':
      return { ...envelope, type: 'append', prevLogIndex: index(wire.logIndex), prevLogTerm: term(wire.logTerm), entries: wire.entries.map(entryFromWire), commit: index(wire.commit) };
    case 'appendResponse':
      return { ...envelope, type: 'appendResponse', reject: wire.reject, index: index(wire.index) };
    case 'heartbeat':
      return { ...envelope, type: 'heartbeat', commit: index(wire.commit), context: wire.context };
    case 'heartbeatResponse':
      return { ...envelope, type: 'heartbeatResponse', context: wire.context };
    case 'snapshotChunk':
      return { ...envelope, type: 'snapshotChunk', meta: metaFromWire(wire.snapshotMeta), offset: wire.offset, data: wire.data, last: wire.last };
    case 'snapshotResponse':
      return { ...envelope, type: 'snapshotResponse', reject: wire.reject, offset: wire.offset, index: index(wire.index) };
    case 'timeoutNow':
      return { ...envelope, type: 'timeoutNow' };
    default:
      return undefined;
  }
}
