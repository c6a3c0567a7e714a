/**
 * createRaftCore: the RaftCore of types.ts over a RaftNode — proposals, reads, transfers,
 * compaction, and the Ready/advance handshake with the driver.
 */
import { encodeConfChange, isVoter, validateConfChange } from './conf-change.js';
import { assert } from './invariant.js';
import { afterCommit, maybeCommit, requestRead, startTransfer } from './leader.js';
import { RaftNode } from './raft-node.js';
import { step, tick } from './raft.js';
import { broadcastAppend } from './replication.js';
import { NO_MEMBER } from './types.js';
import type {
  ConfChange, EntryType, HardState, LogIndex, MemberId, ProgressStatus, ProposeResult, RaftConfig, RaftCore, RaftInitialState, RaftStatus,
  Ready, SoftState,
} from './types.js';

const MiB = 1024 * 1024;

/** The recommended configuration (DESIGN.md §4): 10-tick elections, 1-tick heartbeats, pre-vote and check-quorum on. */
export function defaultRaftConfig(id: MemberId, random: () => number): RaftConfig {
  return {
    id,
    random,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    maxInflightMessages: 256,
    maxMessageBytes: 1 * MiB,
    maxUncommittedBytes: 64 * MiB,
    snapshotChunkBytes: 512 * 1024,
  };
}

/** Creates the pure core of one member from what it recovered from its own disk. */
export function createRaftCore(config: RaftConfig, initial: RaftInitialState): RaftCore {
  const node = new RaftNode(config, initial);
  let lastSoftState: SoftState = { leader: node.leader, role: node.role };
  let lastHardState: HardState = { ...initial.hardState };

  const softState = (): SoftState => ({ leader: node.leader, role: node.role });
  const hardState = (): HardState => ({ term: node.term, vote: node.vote, commit: node.log.committed });
  const softChanged = (): boolean => lastSoftState.leader !== node.leader || lastSoftState.role !== node.role;
  const hardChanged = (): boolean =>
    lastHardState.term !== node.term || lastHardState.vote !== node.vote || lastHardState.commit !== node.log.committed;

  function proposeEntry(type: EntryType, data: Uint8Array): ProposeResult {
    const refusal = refuseProposal(node, data.length);
    if (refusal !== undefined) {
      return refusal;
    }
    const entry = node.appendLocal(type, data);
    const committed = maybeCommit(node);
    broadcastAppend(node);
    if (committed) {
      afterCommit(node);
    }
    return { ok: true, index: entry.index, term: entry.term };
  }

  return {
    tick: () => tick(node),
    step: (message) => step(node, message),
    propose: (data) => proposeEntry('normal', data),

    proposeConfChange(change: ConfChange): ProposeResult {
      const refusal = refuseProposal(node, 0);
      if (refusal !== undefined) {
        return refusal;
      }
      if (node.pendingConfIndex > node.log.committed) {
        return { ok: false, reason: 'conf_change_pending', message: `cannot change membership (${change.type} ${change.member}): the change at index ${node.pendingConfIndex} is not committed yet` };
      }
      const invalid = validateConfChange(change, {
        conf: node.conf,
        lastIndex: node.log.lastIndex(),
        matchOf: (member) => node.progress.get(member)?.match,
      });
      if (invalid !== undefined) {
        return { ok: false, reason: 'invalid_conf_change', message: invalid };
      }
      const result = proposeEntry('config', encodeConfChange(change));
      if (result.ok) {
        node.pendingConfIndex = result.index;
      }
      return result;
    },

    readIndex(requestId: string) {
      if (node.role !== 'leader') {
        return { ok: false, reason: 'not_leader', leader: node.leader };
      }
      requestRead(node, requestId);
      return { ok: true };
    },

    transferLeadership(to: MemberId) {
      const refusal = refuseTransfer(node, to);
      if (refusal !== undefined) {
        return { ok: false, reason: refusal };
      }
      if (node.transferee !== to) {
        startTransfer(node, to);
      }
      return { ok: true };
    },

    compact(index: LogIndex, data: Uint8Array): void {
      if (index <= node.log.snapshotMeta().index) {
        return; // stale: we already hold a snapshot at least this new
      }
      node.log.compact({ index, term: node.log.mustTerm(index), conf: node.confAt(index) }, data);
    },

    reportUnreachable(member: MemberId): void {
      const progress = node.role === 'leader' ? node.progress.get(member) : undefined;
      if (progress?.state === 'replicate') {
        progress.becomeProbe();
      }
    },

    hasReady(): boolean {
      return softChanged() || hardChanged() || node.log.hasUnstable() || node.log.hasCommittedToApply() ||
        node.messages.length > 0 || node.readStates.length > 0;
    },

    ready(): Ready {
      const soft = softChanged() ? softState() : undefined;
      const hard = hardChanged() ? hardState() : undefined;
      lastSoftState = softState();
      lastHardState = hardState();
      const { snapshot, entries } = node.log.takeUnstable();
      const committedEntries = node.log.takeCommitted();
      const messages = node.messages;
      const readStates = node.readStates;
      node.messages = [];
      node.readStates = [];
      return { softState: soft, hardState: hard, entries, snapshot, messages, committedEntries, readStates };
    },

    advance(ready: Ready): void {
      if (ready.snapshot !== undefined) {
        node.log.stableTo(ready.snapshot.meta.index, ready.snapshot.meta.term);
      }
      const lastPersisted = ready.entries[ready.entries.length - 1];
      if (lastPersisted !== undefined) {
        node.log.stableTo(lastPersisted.index, lastPersisted.term);
      }
      if (node.role === 'leader' && node.progress.get(node.id)?.maybeUpdate(node.log.persisted) === true && maybeCommit(node)) {
        broadcastAppend(node); // carries the new commit index
        afterCommit(node);
      }
      if (ready.snapshot !== undefined) {
        node.log.appliedTo(ready.snapshot.meta.index);
      }
      const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
      if (lastApplied !== undefined) {
        node.log.appliedTo(lastApplied.index);
      }
    },

    status: () => statusOf(node),
  };
}

function refuseProposal(node: RaftNode, bytes: number): Exclude<ProposeResult, { ok: true }> | undefined {
  if (node.role !== 'leader') {
    return { ok: false, reason: 'not_leader', leader: node.leader };
  }
  if (node.transferee !== NO_MEMBER) {
    return { ok: false, reason: 'transfer_in_progress', message: `cannot propose: leadership is being transferred to ${node.transferee}` };
  }
  const limit = node.config.maxUncommittedBytes;
  // One entry larger than the limit is still accepted when nothing else is uncommitted.
  if (node.uncommittedBytes > 0 && node.uncommittedBytes + bytes > limit) {
    return {
      ok: false,
      reason: 'too_many_uncommitted',
      message: `cannot propose ${bytes} bytes: ${node.uncommittedBytes} bytes are uncommitted and the limit is ${limit} (maxUncommittedBytes)`,
    };
  }
  return undefined;
}

function refuseTransfer(node: RaftNode, to: MemberId): string | undefined {
  if (node.role !== 'leader') {
    return `cannot transfer leadership to ${to}: not the leader (leader is ${node.leader === NO_MEMBER ? 'unknown' : node.leader})`;
  }
  if (to === node.id) {
    return `cannot transfer leadership to ${to}: it is already the leader`;
  }
  if (!isVoter(node.conf, to)) {
    return `cannot transfer leadership to ${to}: not a voter`;
  }
  return undefined;
}

function statusOf(node: RaftNode): RaftStatus {
  const progress = new Map<MemberId, ProgressStatus>();
  if (node.role === 'leader') {
    for (const [member, memberProgress] of node.progress) {
      progress.set(member, memberProgress.status());
    }
  }
  assert(node.log.applied <= node.log.committed, 'applied never passes commit');
  return {
    id: node.id,
    term: node.term,
    role: node.role,
    leader: node.leader,
    commit: node.log.committed,
    applied: node.log.applied,
    lastIndex: node.log.lastIndex(),
    conf: { voters: [...node.conf.voters], learners: [...node.conf.learners] },
    progress,
  };
}
