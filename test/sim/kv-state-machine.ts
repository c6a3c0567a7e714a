/**
 * The replicated state machine of the simulation: a string key-value store applying committed
 * log entries, plus the membership as of the last applied entry (for snapshot metadata).
 *
 * A normal entry carries one client command (client id, request sequence number, put or cas).
 * Apply is idempotent by request: each client's last sequence number and output are kept (a
 * "session", as in the Raft dissertation §6.3), so a command retried after a timeout and
 * committed twice takes effect once, and the retry gets the first outcome.
 */

import type { ConfChange, ConfState, Entry, LogIndex } from '../../manager/raft/core/types.js';
import type { KvInput, KvOutput } from './kv-model.js';

/** A write command as it travels in a log entry. Reads never enter the log (they use ReadIndex). */
export interface ClientCommand {
  clientId: string;
  sequence: number;
  input: Extract<KvInput, { kind: 'put' | 'cas' }>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(command: ClientCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

export function decodeCommand(data: Uint8Array): ClientCommand {
  return JSON.parse(decoder.decode(data)) as ClientCommand;
}

/** A stable text for an entry, used to compare entries across members. */
export function entryText(entry: Entry): string {
  return `${entry.term}/${entry.type}/${entry.data.length === 0 ? '' : decoder.decode(entry.data)}`;
}

/** What applying one entry produced for the client that sent it (undefined: not a client command, or an older duplicate). */
export interface ApplyResult {
  command: ClientCommand;
  output: KvOutput;
}

interface Session {
  sequence: number;
  output: KvOutput;
}

interface SnapshotBody {
  applied: number;
  conf: ConfState;
  data: [string, string][];
  sessions: [string, Session][];
}

export type ConfChangeDecoder = (data: Uint8Array) => ConfChange;

export class KvStateMachine {
  private readonly data = new Map<string, string>();
  private readonly sessions = new Map<string, Session>();
  private appliedIndex: LogIndex;
  private confState: ConfState;

  constructor(
    private readonly decodeConfChange: ConfChangeDecoder,
    initial: { applied: LogIndex; conf: ConfState },
  ) {
    this.appliedIndex = initial.applied;
    this.confState = { voters: initial.conf.voters.slice(), learners: initial.conf.learners.slice() };
  }

  /** Rebuilds a state machine from snapshot data produced by `snapshot()`. */
  static restore(decodeConfChange: ConfChangeDecoder, data: Uint8Array): KvStateMachine {
    const body = JSON.parse(decoder.decode(data)) as SnapshotBody;
    const machine = new KvStateMachine(decodeConfChange, { applied: body.applied as LogIndex, conf: body.conf });
    for (const [key, value] of body.data) machine.data.set(key, value);
    for (const [clientId, session] of body.sessions) machine.sessions.set(clientId, session);
    return machine;
  }

  get applied(): LogIndex {
    return this.appliedIndex;
  }

  get conf(): ConfState {
    return this.confState;
  }

  /** Applies the next committed entry. The caller asserts ordering; this asserts contiguity. */
  apply(entry: Entry): ApplyResult | undefined {
    if (entry.index !== this.appliedIndex + 1) throw new Error(`KvStateMachine: applying entry ${entry.index} after ${this.appliedIndex}`);
    this.appliedIndex = entry.index;
    if (entry.type === 'config') {
      this.applyConfChange(this.decodeConfChange(entry.data));
      return undefined;
    }
    if (entry.data.length === 0) return undefined; // a new leader's empty entry
    const command = decodeCommand(entry.data);
    const session = this.sessions.get(command.clientId);
    if (session !== undefined && command.sequence <= session.sequence) {
      return command.sequence === session.sequence ? { command, output: session.output } : undefined;
    }
    const output = this.execute(command.input);
    this.sessions.set(command.clientId, { sequence: command.sequence, output });
    return { command, output };
  }

  /** A linearizable read's value, once the caller has waited for the read index to be applied. */
  get(key: string): string | undefined {
    return this.data.get(key);
  }

  snapshot(): Uint8Array {
    const body: SnapshotBody = { applied: this.appliedIndex, conf: this.confState, data: [...this.data].sort(), sessions: [...this.sessions].sort() };
    return encoder.encode(JSON.stringify(body));
  }

  /** Equal for equal states; compared across members once the cluster converges. */
  digest(): string {
    return JSON.stringify([...this.data].sort());
  }

  protected execute(input: ClientCommand['input']): KvOutput {
    switch (input.kind) {
      case 'put':
        this.data.set(input.key, input.value);
        return { kind: 'put' };
      case 'cas': {
        if (this.data.get(input.key) !== input.expected) return { kind: 'cas', swapped: false };
        this.data.set(input.key, input.value);
        return { kind: 'cas', swapped: true };
      }
      default:
        return assertNever(input);
    }
  }

  /** A change that no longer makes sense (adding a member, promoting a non-learner) is a no-op, as in the core. */
  private applyConfChange(change: ConfChange): void {
    const { voters, learners } = this.confState;
    const member = change.member;
    const isMember = voters.includes(member) || learners.includes(member);
    switch (change.type) {
      case 'addLearner':
        if (!isMember) this.confState = { voters, learners: [...learners, member].sort() };
        return;
      case 'promoteLearner':
        if (learners.includes(member)) this.confState = { voters: [...voters, member].sort(), learners: learners.filter((id) => id !== member) };
        return;
      case 'removeMember':
        this.confState = { voters: voters.filter((id) => id !== member), learners: learners.filter((id) => id !== member) };
        return;
      default:
        assertNever(change);
    }
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
