/**
 * Membership changes: their wire encoding (the data of a `config` entry), their validation on
 * the leader at proposal time, and their effect on a ConfState once committed.
 *
 * Changes are one at a time (the leader refuses a second while one is uncommitted), so the
 * configuration a change is validated against is the one it is applied to. Applying is total and
 * deterministic: a change that no longer makes sense (e.g. adding an existing member) is a no-op
 * on every member alike.
 */
import type { ConfChange, ConfState, LogIndex, MemberId } from './types.js';

/** A learner may be promoted only when its log is at most this many entries behind the leader's. */
export const PROMOTE_MAX_LAG_ENTRIES = 16;

const CONF_CHANGE_TYPES: ReadonlySet<string> = new Set(['addLearner', 'promoteLearner', 'removeMember']);

/** Encodes a change as the data of a `config` entry (UTF-8 JSON; stable across versions). */
export function encodeConfChange(change: ConfChange): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ type: change.type, member: change.member }));
}

/** Decodes the data of a `config` entry; throws "cannot decode conf change: ..." on malformed data. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (error) {
    throw new Error(`cannot decode conf change: not UTF-8 JSON (${String(error)})`);
  }
  if (typeof parsed !== 'object' || parsed === null) {
    throw new Error('cannot decode conf change: not an object');
  }
  const { type, member } = parsed as { type?: unknown; member?: unknown };
  if (typeof type !== 'string' || !CONF_CHANGE_TYPES.has(type)) {
    throw new Error(`cannot decode conf change: unknown type ${JSON.stringify(type)}`);
  }
  if (typeof member !== 'string' || member === '') {
    throw new Error('cannot decode conf change: member must be a non-empty string');
  }
  return { type, member } as ConfChange;
}

export function isVoter(conf: ConfState, member: MemberId): boolean {
  return conf.voters.includes(member);
}

export function isLearner(conf: ConfState, member: MemberId): boolean {
  return conf.learners.includes(member);
}

export function isMember(conf: ConfState, member: MemberId): boolean {
  return isVoter(conf, member) || isLearner(conf, member);
}

export interface LeaderView {
  conf: ConfState;
  lastIndex: LogIndex;
  matchOf(member: MemberId): LogIndex | undefined;
}

/** Why the leader must refuse `change`, as "cannot ...: ..." text, or undefined when it is valid. */
export function validateConfChange(change: ConfChange, view: LeaderView): string | undefined {
  const { conf } = view;
  const member = change.member;
  switch (change.type) {
    case 'addLearner':
      return isMember(conf, member) ? `cannot add learner ${member}: already a member` : undefined;
    case 'promoteLearner': {
      if (!isLearner(conf, member)) {
        return `cannot promote ${member}: not a learner`;
      }
      const match = view.matchOf(member) ?? 0;
      const lag = view.lastIndex - match;
      return lag > PROMOTE_MAX_LAG_ENTRIES
        ? `cannot promote ${member}: not caught up (matched ${match} of ${view.lastIndex}, ${lag} entries behind; at most ${PROMOTE_MAX_LAG_ENTRIES} allowed)`
        : undefined;
    }
    case 'removeMember':
      if (!isMember(conf, member)) {
        return `cannot remove ${member}: not a member`;
      }
      return isVoter(conf, member) && conf.voters.length === 1 ? `cannot remove ${member}: it is the last voter` : undefined;
  }
}

/** The configuration after a committed `change`. Returns a new value; `conf` is not modified. */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  const member = change.member;
  switch (change.type) {
    case 'addLearner':
      return isMember(conf, member) ? conf : { voters: [...conf.voters], learners: [...conf.learners, member] };
    case 'promoteLearner':
      return isLearner(conf, member)
        ? { voters: [...conf.voters, member], learners: conf.learners.filter((id) => id !== member) }
        : conf;
    case 'removeMember':
      return { voters: conf.voters.filter((id) => id !== member), learners: conf.learners.filter((id) => id !== member) };
  }
}
