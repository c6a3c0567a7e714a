/**
 * The simulated network between Raft members: every message may be dropped, delayed by a random
 * number of ticks (which also reorders), or duplicated; links can be cut (partitions, "swizzle")
 * and restored. Delivery happens once per tick, in a random order within the tick.
 *
 * The network knows nothing about crashes: the world drops messages from and to a member that is
 * down. A cut link drops messages both when they are sent and when they would be delivered, so
 * cutting a link also loses what was in flight on it.
 */

import type { MemberId, Message } from '../../manager/raft/core/types.js';
import type { Prng } from './prng.js';

/** Messages in flight at most; beyond it the network drops (a full socket buffer). */
export const MAX_MESSAGES_IN_FLIGHT = 20_000;

/** Per-message faults. The fault-free phase uses `RELIABLE_NETWORK`. */
export interface MessageFaults {
  dropProbability: number;
  duplicateProbability: number;
  /** Delivery happens 1 + random[0, maxExtraDelayTicks] ticks after sending. */
  maxExtraDelayTicks: number;
}

export const RELIABLE_NETWORK: MessageFaults = { dropProbability: 0, duplicateProbability: 0, maxExtraDelayTicks: 1 };

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
}

/** A queue of items due at a tick; items due at the same tick come out in a random order. */
export class DelayQueue<T> {
  private readonly buckets = new Map<number, T[]>();
  private size = 0;
  /** The last tick taken: an item due then or earlier would never come out. */
  private takenThroughTick = Number.NEGATIVE_INFINITY;

  get length(): number {
    return this.size;
  }

  schedule(item: T, dueTick: number): void {
    if (dueTick <= this.takenThroughTick) throw new Error(`DelayQueue: item due at tick ${dueTick} but tick ${this.takenThroughTick} was already taken`);
    const bucket = this.buckets.get(dueTick);
    if (bucket === undefined) this.buckets.set(dueTick, [item]);
    else bucket.push(item);
    this.size++;
  }

  /** Everything due at `tick`, shuffled. Callers call this once per tick, in order. */
  takeDue(tick: number, random: Prng): T[] {
    this.takenThroughTick = tick;
    const bucket = this.buckets.get(tick);
    if (bucket === undefined) return [];
    this.buckets.delete(tick);
    this.size -= bucket.length;
    return bucket.length > 1 ? random.shuffled(bucket) : bucket;
  }

  clear(): void {
    this.buckets.clear();
    this.size = 0;
  }
}

export class SimNetwork {
  private readonly queue = new DelayQueue<Message>();
  private readonly cutLinks = new Set<string>();
  private faults: MessageFaults = RELIABLE_NETWORK;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };

  constructor(private readonly random: Prng) {}

  setFaults(faults: MessageFaults): void {
    this.faults = faults;
  }

  /** Cuts the link between two members, both ways. */
  cut(left: MemberId, right: MemberId): void {
    this.cutLinks.add(linkKey(left, right));
  }

  restore(left: MemberId, right: MemberId): void {
    this.cutLinks.delete(linkKey(left, right));
  }

  /** Cuts every link between `side` and the other members. */
  partition(side: readonly MemberId[], everyone: readonly MemberId[]): void {
    for (const inside of side) for (const outside of everyone) if (!side.includes(outside)) this.cut(inside, outside);
  }

  healAll(): void {
    this.cutLinks.clear();
  }

  isCut(left: MemberId, right: MemberId): boolean {
    return this.cutLinks.has(linkKey(left, right));
  }

  /** The links currently cut, as [left, right] pairs, in a stable order. */
  cuts(): [MemberId, MemberId][] {
    return [...this.cutLinks].sort().map((key) => key.split('|') as [MemberId, MemberId]);
  }

  /**
   * Queues a message. Returns false when the link is cut: the sender's transport notices a broken
   * connection (and the driver reports the peer unreachable). Random loss is silent.
   */
  send(message: Message, now: number): boolean {
    this.stats.sent++;
    if (this.isCut(message.from, message.to)) {
      this.stats.dropped++;
      return false;
    }
    if (this.random.chance(this.faults.dropProbability) || this.queue.length >= MAX_MESSAGES_IN_FLIGHT) {
      this.stats.dropped++;
      return true;
    }
    // Copied, as a real transport would: the receiver never shares an object with the sender.
    this.queue.schedule(copyMessage(message), now + 1 + this.random.int(this.faults.maxExtraDelayTicks + 1));
    if (this.random.chance(this.faults.duplicateProbability)) {
      this.stats.duplicated++;
      this.queue.schedule(copyMessage(message), now + 1 + this.random.int(this.faults.maxExtraDelayTicks + 1));
    }
    return true;
  }

  /** The messages due this tick; those whose link was cut meanwhile come back as `broken` (the connection failed). */
  deliver(now: number): { delivered: Message[]; broken: Message[] } {
    const delivered: Message[] = [];
    const broken: Message[] = [];
    for (const message of this.queue.takeDue(now, this.random)) {
      if (this.isCut(message.from, message.to)) {
        this.stats.dropped++;
        broken.push(message);
        continue;
      }
      this.stats.delivered++;
      delivered.push(message);
    }
    return { delivered, broken };
  }

  inFlight(): number {
    return this.queue.length;
  }
}

/** A copy as a real transport would produce: no object shared between sender and receiver. */
export function copyMessage(message: Message): Message {
  if (message.type === 'append') return { ...message, entries: message.entries.map((entry) => ({ ...entry, data: entry.data.slice() })) };
  if (message.type === 'snapshotChunk') return { ...message, meta: { ...message.meta, conf: copyConf(message.meta.conf) }, data: message.data.slice() };
  return { ...message };
}

function copyConf(conf: { voters: MemberId[]; learners: MemberId[] }): { voters: MemberId[]; learners: MemberId[] } {
  return { voters: conf.voters.slice(), learners: conf.learners.slice() };
}

function linkKey(left: MemberId, right: MemberId): string {
  return left < right ? `${left}|${right}` : `${right}|${left}`;
}
