/**
 * The Raft driver: the imperative shell around the pure core. It ticks the core on a timer,
 * feeds it messages from the transport, and processes each Ready in the order the core
 * requires (types.ts Ready): send the leader's replication traffic and apply the committed
 * entries at once; persist (snapshot, entries, hard state; one fsync) BEFORE sending anything
 * that promises what is on this disk (acknowledgements, votes); then advance. Two Readies may
 * be under way: one being written while the next is taken, sent and applied. It also takes
 * snapshots to bound the log.
 */
import type { Logger } from '../../../common/log.js';
import type { ConfState, Entry, LogIndex, MemberId, Message, RaftCore, Ready, SoftState, Term } from '../core/types.js';
import type { RaftStorage } from '../storage/raft-storage.js';
import { coalesceAppends, mayPrecedePersist } from './ready-messages.js';

/** Milliseconds per Raft tick (DESIGN.md §4: 100 ms). */
export const TICK_MS = 100;
/** Applied entries between snapshots. */
export const SNAPSHOT_INTERVAL_ENTRIES = 2000;

/** What the node applies committed entries to (the store, through the Raft backend). */
export interface StateMachine {
  /** Applies one committed normal entry. */
  apply(entry: Entry): void;
  /** Replaces the state with a snapshot's data. */
  restore(data: Uint8Array): void;
  /** The state as of the last applied entry. */
  snapshot(): Uint8Array;
}

export interface RaftNodeEvents {
  onSoftState?: (state: SoftState) => void;
  onReadState?: (requestId: string, index: LogIndex) => void;
  onApplied?: (index: LogIndex) => void;
  onConfState?: (conf: ConfState) => void;
}

export interface Transport {
  send(messages: Message[]): void;
}

export class RaftNode {
  private ticker: NodeJS.Timeout | undefined;
  private processing = false;
  private pendingWork = false;
  private scheduled = false;
  /** The write of the last Ready handed out; resolves once it is durable and advanced. */
  private writing: Promise<void> = Promise.resolve();
  private stopped = false;
  private appliedIndex: LogIndex;
  private appliedTerm: Term;
  private snapshotIndex: LogIndex;
  /** The log after the last snapshot as persisted: carried into the next compaction. */
  private persisted: Entry[];
  private readonly idleWaiters: Array<() => void> = [];

  constructor(
    readonly core: RaftCore,
    private readonly storage: RaftStorage,
    private readonly machine: StateMachine,
    private readonly transport: Transport,
    private readonly events: RaftNodeEvents,
    private readonly log: Logger,
    initial: { snapshotIndex: LogIndex; snapshotTerm: Term; entries: Entry[] },
  ) {
    this.appliedIndex = initial.snapshotIndex;
    this.appliedTerm = initial.snapshotTerm;
    this.snapshotIndex = initial.snapshotIndex;
    this.persisted = [...initial.entries];
  }

  get applied(): LogIndex {
    return this.appliedIndex;
  }

  start(): void {
    this.ticker = setInterval(() => {
      this.core.tick();
      this.kick();
    }, TICK_MS);
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker !== undefined) clearInterval(this.ticker);
    while (this.processing) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.writing;
  }

  /** Delivers a message from a peer. */
  step(message: Message): void {
    if (this.stopped) return;
    this.core.step(message);
    this.kick();
  }

  /**
   * Schedules Ready processing after a change to the core (propose, readIndex, a message, ...).
   * A microtask, not setImmediate: everything the current callback does to the core (a batch
   * of messages off the wire, a proposal) is in the Ready, and no loop turn (with its I/O
   * polling) is added to every write's latency.
   */
  kick(): void {
    if (this.stopped) return;
    if (this.processing) {
      this.pendingWork = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.process();
    });
  }

  private async process(): Promise<void> {
    if (this.processing || this.stopped) return;
    this.processing = true;
    try {
      do {
        this.pendingWork = false;
        while (this.core.hasReady() && !this.stopped) {
          if (this.appliedIndex - this.snapshotIndex >= SNAPSHOT_INTERVAL_ENTRIES) {
            // A snapshot needs the machine and the core at the same applied index, and the disk idle.
            await this.writing;
            if (this.appliedIndex - this.snapshotIndex >= SNAPSHOT_INTERVAL_ENTRIES) await this.takeSnapshot();
          }
          const ready = this.core.ready();
          const late = this.handOut(ready);
          // At most two Readies at once: this one waits for the previous one's write, then
          // writes while the loop takes, sends and applies the next.
          await this.writing;
          this.writing = this.persist(ready, late);
        }
      } while (this.pendingWork && !this.stopped);
    } catch (error) {
      // A failed snapshot write (or a state machine that cannot apply a committed entry) leaves
      // this member's state unknown: stop (as etcd does) and let recovery read back the disk.
      this.log.error('raft ready processing failed; exiting', { error: String(error) });
      process.exit(70);
    } finally {
      this.processing = false;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  /**
   * Everything of a Ready that need not wait for its write: the leader's replication traffic
   * (its own entries count toward commit only after `advance`), and the committed entries,
   * which a quorum already holds durably, so they are applied and their writers answered now.
   * Returns the messages that must wait for the write.
   */
  private handOut(ready: Ready): Message[] {
    if (ready.softState !== undefined) this.events.onSoftState?.(ready.softState);
    // One append per follower, not one per proposal.
    const messages = coalesceAppends(ready.messages);
    this.transport.send(messages.filter(mayPrecedePersist));
    if (ready.snapshot !== undefined && ready.snapshot.meta.index > this.appliedIndex) {
      this.machine.restore(ready.snapshot.data);
      this.appliedIndex = ready.snapshot.meta.index;
      this.appliedTerm = ready.snapshot.meta.term;
      this.snapshotIndex = ready.snapshot.meta.index;
      this.events.onConfState?.(ready.snapshot.meta.conf);
    }
    for (const entry of ready.committedEntries) {
      if (entry.index <= this.appliedIndex) continue;
      if (entry.type === 'normal' && entry.data.length > 0) this.machine.apply(entry);
      this.appliedIndex = entry.index;
      this.appliedTerm = entry.term;
      if (entry.type === 'config') this.events.onConfState?.(this.core.status().conf);
    }
    if (ready.committedEntries.length > 0) this.events.onApplied?.(this.appliedIndex);
    for (const read of ready.readStates) this.events.onReadState?.(read.requestId, read.index);
    return messages.filter((message) => !mayPrecedePersist(message));
  }

  /**
   * Writes a Ready (one record, one fdatasync when needed), then sends what had to wait for it
   * (acknowledgements and votes: a promise about this disk is kept before it is made), then
   * tells the core, which may now count the leader's own entries toward commit.
   */
  private async persist(ready: Ready, late: Message[]): Promise<void> {
    try {
      await this.storage.save(ready.snapshot, ready.entries, ready.hardState);
    } catch (error) {
      // A failed fsync leaves durability unknown: the only safe answer is to stop this process
      // (as etcd does) and let recovery read back what is really on disk.
      this.log.error('raft storage failed; exiting', { error: String(error) });
      process.exit(70);
    }
    if (this.stopped) return;
    this.transport.send(late);
    this.trackPersisted(ready);
    this.core.advance(ready);
    this.kick();
  }

  private trackPersisted(ready: Ready): void {
    if (ready.snapshot !== undefined) this.persisted = [];
    const first = ready.entries[0];
    if (first === undefined) return;
    if (first.index === (this.persisted.at(-1)?.index ?? first.index - 1) + 1) this.persisted.push(...ready.entries);
    else this.persisted = [...this.persisted.filter((entry) => entry.index < first.index), ...ready.entries];
  }

  private async takeSnapshot(): Promise<void> {
    const index = this.appliedIndex;
    const data = this.machine.snapshot();
    const conf = this.core.status().conf;
    this.core.compact(index, data);
    const tail = this.persisted.filter((entry) => entry.index > index);
    await this.storage.compact({ meta: { index, term: this.appliedTerm, conf }, data }, tail);
    this.persisted = tail;
    this.snapshotIndex = index;
    this.log.info('raft snapshot taken', { index });
  }
}

export type { MemberId };
