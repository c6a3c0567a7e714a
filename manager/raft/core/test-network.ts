/**
 * A deterministic in-memory network of Raft cores for the core's unit tests: messages are
 * delivered only when a test says so, each member has a fake disk (what its Readys persisted) and
 * a fake state machine (the entries it applied), and a test can drop or cut links, restart a
 * member from its disk, and print messages as transcript lines.
 *
 * Test support only; not used by production code.
 */
import { createRaftCore, defaultRaftConfig } from './core.js';
import { asIndex, asTerm, assert } from './invariant.js';
import { NO_MEMBER } from './types.js';
import type { ConfState, Entry, HardState, LogIndex, MemberId, Message, RaftConfig, RaftCore, ReadState, Snapshot } from './types.js';

export const id = (name: string): MemberId => name as MemberId;

export interface Disk {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
}

export interface Member {
  id: MemberId;
  core: RaftCore;
  config: RaftConfig;
  disk: Disk;
  /** Entries applied to the fake state machine, in order (after the installed snapshot, if any). */
  applied: Entry[];
  appliedIndex: LogIndex;
  installedSnapshot: Snapshot | undefined;
  readStates: ReadState[];
}

export type Drop = (message: Message) => boolean;

export class TestNetwork {
  readonly members = new Map<MemberId, Member>();
  /** Messages sent and not yet delivered, in send order. */
  inFlight: Message[] = [];
  /** Every message delivered or dropped, for transcripts. */
  readonly log: string[] = [];
  private readonly cut = new Set<string>();
  drop: Drop = () => false;

  /** Members `voters` (and `learners`) bootstrapped with the same conf; overrides apply to every config. */
  constructor(voters: string[], overrides: Partial<RaftConfig> = {}, learners: string[] = []) {
    const conf: ConfState = { voters: voters.map(id), learners: learners.map(id) };
    [...voters, ...learners].forEach((name, position) => {
      // Member k times out after electionTicks + k ticks: distinct timeouts avoid split votes.
      const draw = (position % 10) / 10;
      this.add(name, conf, { random: () => draw, ...overrides });
    });
  }

  /** Adds a member with an empty disk that knows `conf` (empty for a member joining later). */
  add(name: string, conf: ConfState, overrides: Partial<RaftConfig> = {}): Member {
    const member = id(name);
    // random() = 0 unless overridden: the election timeout is exactly electionTicks.
    const config: RaftConfig = { ...defaultRaftConfig(member, () => 0), ...overrides, id: member };
    const disk: Disk = {
      hardState: { term: asTerm(0), vote: NO_MEMBER, commit: asIndex(0) },
      snapshot: { meta: { index: asIndex(0), term: asTerm(0), conf }, data: new Uint8Array(0) },
      entries: [],
    };
    const state: Member = {
      id: member, config, disk, applied: [], appliedIndex: asIndex(0), installedSnapshot: undefined, readStates: [],
      core: createRaftCore(config, { hardState: disk.hardState, snapshot: disk.snapshot, entries: [], applied: asIndex(0) }),
    };
    this.members.set(member, state);
    return state;
  }

  member(name: string): Member {
    const found = this.members.get(id(name));
    assert(found !== undefined, `no member ${name}`);
    return found;
  }

  core(name: string): RaftCore {
    return this.member(name).core;
  }

  /** Crashes `name` (losing nothing it persisted) and starts it again from its disk. */
  restart(name: string, overrides: Partial<RaftConfig> = {}): void {
    const member = this.member(name);
    const config = { ...member.config, ...overrides };
    member.config = config;
    member.core = createRaftCore(config, {
      hardState: member.disk.hardState,
      snapshot: member.disk.snapshot,
      entries: [...member.disk.entries],
      applied: member.appliedIndex,
    });
    this.inFlight = this.inFlight.filter((message) => message.to !== member.id);
  }

  /** Replaces `name`'s disk with a log of entries of the given terms (indexes 1..n), then restarts it. */
  setLog(name: string, terms: number[], term: number, commit = 0): void {
    const member = this.member(name);
    member.disk.entries = terms.map((entryTerm, position) => ({
      term: asTerm(entryTerm), index: asIndex(position + 1), type: 'normal', data: new Uint8Array(0),
    }));
    member.disk.hardState = { term: asTerm(term), vote: NO_MEMBER, commit: asIndex(commit) };
    member.appliedIndex = asIndex(commit);
    this.restart(name);
  }

  /** The application of `name` snapshots its state at `index` (which it applied): compacts core and disk. */
  compact(name: string, index: number, data: Uint8Array): void {
    const member = this.member(name);
    const entry = member.disk.entries.find((candidate) => candidate.index === index);
    assert(entry !== undefined, `${name} has no entry ${index} on disk`);
    member.core.compact(asIndex(index), data);
    member.disk.snapshot = { meta: { index: asIndex(index), term: entry.term, conf: member.core.status().conf }, data };
    member.disk.entries = member.disk.entries.filter((candidate) => candidate.index > index);
  }

  /** Hands `message` to its recipient directly (bypassing cuts and drops) and runs its Ready. */
  inject(message: Message): void {
    this.log.push(`INJECT ${describe(message)}`);
    this.core(message.to).step(message);
    this.processReady(message.to);
  }

  /** Removes and returns the in-flight messages matching `filter`. */
  take(filter: (message: Message) => boolean): Message[] {
    const taken = this.inFlight.filter(filter);
    this.inFlight = this.inFlight.filter((message) => !filter(message));
    return taken;
  }

  /**
   * Runs the Ready loop of one member until it is quiet, like the driver: persist, send, apply,
   * advance (a leader's own entries count toward commit at advance, so a commit may need a
   * second Ready). Returns whether there was any Ready.
   */
  processReady(name: string): boolean {
    let any = false;
    while (this.processOneReady(name)) {
      any = true;
    }
    return any;
  }

  private processOneReady(name: string): boolean {
    const member = this.member(name);
    if (!member.core.hasReady()) {
      return false;
    }
    const ready = member.core.ready();
    const disk = member.disk;
    if (ready.snapshot !== undefined) {
      disk.snapshot = ready.snapshot;
      disk.entries = []; // like etcd's ApplySnapshot: the log restarts after the snapshot
    }
    const first = ready.entries[0];
    if (first !== undefined) {
      disk.entries = disk.entries.filter((entry) => entry.index < first.index).concat(ready.entries);
    }
    if (ready.hardState !== undefined) {
      disk.hardState = ready.hardState;
    }
    this.inFlight.push(...ready.messages);
    if (ready.snapshot !== undefined) {
      member.installedSnapshot = ready.snapshot;
      member.applied = [];
      member.appliedIndex = ready.snapshot.meta.index;
    }
    for (const entry of ready.committedEntries) {
      assert(entry.index === member.appliedIndex + 1, `${name} applied ${entry.index} after ${member.appliedIndex}`);
      member.applied.push(entry);
      member.appliedIndex = entry.index;
    }
    member.readStates.push(...ready.readStates);
    member.core.advance(ready);
    return true;
  }

  processAllReady(): void {
    for (const name of this.members.keys()) {
      this.processReady(name);
    }
  }

  /** Cuts both directions between `a` and each of `others`. */
  isolate(name: string, others: string[] = [...this.members.keys()]): void {
    for (const other of others) {
      if (other !== name) {
        this.cut.add(`${name}>${other}`);
        this.cut.add(`${other}>${name}`);
      }
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Delivers the messages in flight now (not those they cause); returns how many were delivered. */
  deliverOnce(filter: (message: Message) => boolean = () => true): number {
    const batch = this.inFlight.filter(filter);
    this.inFlight = this.inFlight.filter((message) => !filter(message));
    let delivered = 0;
    for (const message of batch) {
      if (this.cut.has(`${message.from}>${message.to}`) || this.drop(message)) {
        this.log.push(`DROP ${describe(message)}`);
        continue;
      }
      const target = this.members.get(message.to);
      if (target === undefined) {
        continue;
      }
      this.log.push(describe(message));
      target.core.step(message);
      delivered++;
    }
    this.processAllReady();
    return delivered;
  }

  /** Delivers and processes until nothing is left in flight (bounded). */
  stabilize(maxRounds = 1000): void {
    this.processAllReady();
    for (let round = 0; round < maxRounds; round++) {
      if (this.inFlight.length === 0) {
        return;
      }
      this.deliverOnce();
    }
    throw new Error(`network did not stabilize within ${maxRounds} rounds`);
  }

  tick(name: string, ticks = 1): void {
    for (let i = 0; i < ticks; i++) {
      this.core(name).tick();
    }
    this.processReady(name);
  }

  tickAll(ticks = 1): void {
    for (let i = 0; i < ticks; i++) {
      for (const member of this.members.values()) {
        member.core.tick();
      }
    }
    this.processAllReady();
  }

  /** Ticks `name` alone until its election timeout fires (it starts campaigning). */
  timeout(name: string): void {
    const core = this.core(name);
    const term = core.status().term;
    for (let ticks = 0; ticks < 2 * this.member(name).config.electionTicks; ticks++) {
      core.tick();
      const status = core.status();
      if (status.role !== 'follower' || status.term !== term) {
        break;
      }
    }
    this.processReady(name);
  }

  /** Lets `name` time out (nobody else ticks) and runs the election to the end. */
  elect(name: string): void {
    this.timeout(name);
    this.stabilize();
    assert(this.core(name).status().role === 'leader', `${name} did not win: ${this.core(name).status().role}`);
  }

  leaderOf(name: string): MemberId {
    return this.core(name).status().leader;
  }

  /** Proposes `text` on `name`, which must be the leader. */
  propose(name: string, text: string): LogIndex {
    const result = this.core(name).propose(new TextEncoder().encode(text));
    assert(result.ok, () => `propose on ${name} failed: ${JSON.stringify(result)}`);
    this.processReady(name);
    return result.index;
  }

  /** The data of the normal, non-empty entries `name` applied, as text. */
  appliedTexts(name: string): string[] {
    return this.member(name).applied
      .filter((entry) => entry.type === 'normal' && entry.data.length > 0)
      .map((entry) => new TextDecoder().decode(entry.data));
  }

  /** Terms of the entries on `name`'s disk, e.g. [1, 1, 2] for indexes snapshot+1.. */
  diskTerms(name: string): number[] {
    return this.member(name).disk.entries.map((entry) => entry.term);
  }

  /** Takes the delivered-message transcript so far and clears it. */
  takeLog(): string[] {
    return this.log.splice(0, this.log.length);
  }
}

/** One message as a transcript line, e.g. "a->b append t2 prev=1@1 [2@2] commit=1". */
export function describe(message: Message): string {
  const head = `${message.from}->${message.to} ${message.type} t${message.term}`;
  switch (message.type) {
    case 'preVote':
    case 'vote':
      return `${head} last=${message.lastLogIndex}@${message.lastLogTerm}${message.transfer ? ' transfer' : ''}`;
    case 'preVoteResponse':
    case 'voteResponse':
      return `${head}${message.reject ? ' REJECT' : ''}`;
    case 'append':
      return `${head} prev=${message.prevLogIndex}@${message.prevLogTerm} [${message.entries.map((entry) => `${entry.index}@${entry.term}`).join(' ')}] commit=${message.commit}`;
    case 'appendResponse':
      return `${head}${message.reject ? ' REJECT hint' : ''} index=${message.index}${message.logTerm === undefined ? '' : `@${message.logTerm}`}`;
    case 'heartbeat':
      return `${head} commit=${message.commit}${message.context === '' ? '' : ` ctx=${message.context}`}`;
    case 'heartbeatResponse':
      return `${head}${message.context === '' ? '' : ` ctx=${message.context}`}`;
    case 'snapshotChunk':
      return `${head} snap=${message.meta.index}@${message.meta.term} offset=${message.offset} bytes=${message.data.length}${message.last ? ' last' : ''}`;
    case 'snapshotResponse':
      return `${head}${message.reject ? ' REJECT' : ''} snap=${message.index} offset=${message.offset}`;
    case 'timeoutNow':
      return head;
  }
}

export function text(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}
