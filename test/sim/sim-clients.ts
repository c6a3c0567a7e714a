/**
 * The workload: a few clients, each with at most one operation outstanding, issuing puts, cas and
 * gets on a handful of keys to whichever member they believe leads. A client follows not_leader
 * hints, backs off when the leader is busy, and on a timeout retries the same operation (same
 * sequence number, so the state machine applies it once) on another member. In the faulty phase a
 * client may abandon an operation (a client crash): it stays pending in the history forever.
 *
 * Every invocation and return is stamped from one logical clock, so the history handed to the
 * linearizability checker has no ties and respects the simulation's real-time order.
 */

import type { MemberId } from '../../manager/raft/core/types.js';
import type { ClientReply, ClientRequest } from './client-protocol.js';
import type { EventLog } from './event-log.js';
import { describeKv, type KvInput, type KvOperation, type KvOutput } from './kv-model.js';
import type { Prng } from './prng.js';
import { DelayQueue } from './sim-network.js';

/** Operations a whole run may issue at most (keeps the linearizability check fast). */
export const MAX_OPERATIONS_PER_RUN = 800;

export interface WorkloadSettings {
  clientCount: number;
  keys: readonly string[];
  /** Ticks before a client gives up on an attempt and retries elsewhere. */
  requestTimeoutTicks: number;
  /** Probability that a timed-out operation is abandoned (left pending) instead of retried, in the faulty phase. */
  abandonProbability: number;
  /** Client <-> member latency is 1..1+maxLinkDelayTicks ticks each way. */
  maxLinkDelayTicks: number;
  /** Ticks a client waits between operations, at most. */
  maxThinkTicks: number;
}

interface Outstanding {
  historyIndex: number;
  sequence: number;
  input: KvInput;
  attempt: number;
  target: MemberId;
  /** Tick at which the current attempt is sent (after a backoff); undefined once sent. */
  sendAtTick: number | undefined;
  deadlineTick: number;
}

interface ClientState {
  id: string;
  nextSequence: number;
  leaderGuess: MemberId;
  thinkUntilTick: number;
  outstanding: Outstanding | undefined;
  /** The last value this client saw per key, to make cas succeed sometimes. */
  lastSeen: Map<string, string | undefined>;
}

type HistoryRecord = { clientId: string; input: KvInput; invokeTime: number; returnTime: number | undefined; output: KvOutput | undefined };

export class Workload {
  private readonly clients: ClientState[];
  private readonly requests = new DelayQueue<ClientRequest>();
  private readonly replies = new DelayQueue<ClientReply>();
  private readonly records: HistoryRecord[] = [];
  private clock = 0;
  private answered = 0;

  constructor(
    private readonly settings: WorkloadSettings,
    private readonly random: Prng,
    private readonly events: EventLog,
    initialMembers: readonly MemberId[],
  ) {
    this.clients = Array.from({ length: settings.clientCount }, (_, index) => ({
      id: `c${index + 1}`,
      nextSequence: 1,
      leaderGuess: random.pick(initialMembers),
      thinkUntilTick: 0,
      outstanding: undefined,
      lastSeen: new Map(),
    }));
  }

  /** Requests arriving at members this tick. */
  takeRequests(now: number): ClientRequest[] {
    return this.requests.takeDue(now, this.random);
  }

  /** A member answers; the reply reaches the client after the link delay. */
  sendReply(reply: ClientReply, now: number): void {
    this.replies.schedule(reply, now + 1 + this.random.int(this.settings.maxLinkDelayTicks + 1));
  }

  /** One tick of client behaviour: handle replies, time out, retry, and (when allowed) start new operations. */
  tick(now: number, members: readonly MemberId[], phase: { issueNew: boolean; mayAbandon: boolean }): void {
    for (const reply of this.replies.takeDue(now, this.random)) this.onReply(reply, now, members);
    for (const client of this.clients) {
      const outstanding = client.outstanding;
      if (outstanding !== undefined && outstanding.deadlineTick <= now) {
        if (phase.mayAbandon && this.random.chance(this.settings.abandonProbability)) {
          this.events.record(now, client.id, `abandons #${outstanding.historyIndex} (stays pending)`);
          client.outstanding = undefined;
          client.thinkUntilTick = now + this.random.int(this.settings.maxThinkTicks + 1);
        } else {
          this.retry(client, outstanding, this.random.pick(members), now, 0);
        }
      }
      if (client.outstanding === undefined && phase.issueNew && client.thinkUntilTick <= now && this.records.length < MAX_OPERATIONS_PER_RUN) {
        this.invoke(client, now);
      }
      const current = client.outstanding;
      if (current !== undefined && current.sendAtTick !== undefined && current.sendAtTick <= now) this.send(client, current, now);
    }
  }

  /** True when no client waits for an answer. */
  idle(): boolean {
    return this.clients.every((client) => client.outstanding === undefined);
  }

  operationCount(): number {
    return this.records.length;
  }

  /** Operations answered so far. */
  answeredCount(): number {
    return this.answered;
  }

  /** The history so far, in the checker's format; operations never answered are pending. */
  history(): KvOperation[] {
    return this.records.map((record, id): KvOperation => {
      const base = { id, clientId: record.clientId, input: record.input, invokeTime: record.invokeTime };
      return record.returnTime === undefined || record.output === undefined
        ? { ...base, status: 'pending' }
        : { ...base, status: 'returned', returnTime: record.returnTime, output: record.output };
    });
  }

  private invoke(client: ClientState, now: number): void {
    const sequence = client.nextSequence++;
    const key = this.random.pick(this.settings.keys);
    const roll = this.random.int(10);
    const value = `${client.id}.${sequence}`;
    const input: KvInput = roll < 4 ? { kind: 'get', key } : roll < 8 ? { kind: 'put', key, value } : { kind: 'cas', key, expected: client.lastSeen.get(key), value };
    const historyIndex = this.records.length;
    this.records.push({ clientId: client.id, input, invokeTime: ++this.clock, returnTime: undefined, output: undefined });
    client.outstanding = { historyIndex, sequence, input, attempt: 0, target: client.leaderGuess, sendAtTick: now, deadlineTick: now + this.settings.requestTimeoutTicks };
  }

  private send(client: ClientState, outstanding: Outstanding, now: number): void {
    outstanding.sendAtTick = undefined;
    const request: ClientRequest = { clientId: client.id, sequence: outstanding.sequence, attempt: outstanding.attempt, member: outstanding.target, input: outstanding.input };
    this.events.record(now, client.id, () => `-> ${request.member} #${outstanding.historyIndex} ${describeKv(request.input, { returned: false }).replace(' -> pending', '')} attempt ${request.attempt}`);
    // At least one tick: members took this tick's requests already (a request due now would be lost).
    this.requests.schedule(request, now + 1 + this.random.int(this.settings.maxLinkDelayTicks + 1));
  }

  private retry(client: ClientState, outstanding: Outstanding, target: MemberId, now: number, backoffTicks: number): void {
    outstanding.attempt++;
    outstanding.target = target;
    outstanding.sendAtTick = now + backoffTicks;
    outstanding.deadlineTick = now + backoffTicks + this.settings.requestTimeoutTicks;
    client.leaderGuess = target;
  }

  private onReply(reply: ClientReply, now: number, members: readonly MemberId[]): void {
    const client = this.clients.find((candidate) => candidate.id === reply.clientId);
    const outstanding = client?.outstanding;
    if (client === undefined || outstanding === undefined || outstanding.sequence !== reply.sequence) return; // a late reply to an earlier operation
    const body = reply.body;
    this.events.record(now, client.id, () => `<- ${reply.from} #${outstanding.historyIndex} ${body.kind === 'ok' ? JSON.stringify(body.output) : body.kind === 'not_leader' ? `not_leader ${body.leader || '?'}` : `unavailable ${body.reason}`}`);
    switch (body.kind) {
      case 'ok': {
        const record = this.records[outstanding.historyIndex] as HistoryRecord;
        record.returnTime = ++this.clock;
        this.answered++;
        record.output = body.output;
        if (body.output.kind === 'get') client.lastSeen.set(outstanding.input.key, body.output.value);
        else if (outstanding.input.kind !== 'get') client.lastSeen.set(outstanding.input.key, outstanding.input.value);
        client.outstanding = undefined;
        client.leaderGuess = reply.from;
        client.thinkUntilTick = now + this.random.int(this.settings.maxThinkTicks + 1);
        return;
      }
      case 'not_leader': {
        const hinted = body.leader !== '' && body.leader !== reply.from && members.includes(body.leader);
        this.retry(client, outstanding, hinted ? body.leader : this.random.pick(members), now, hinted ? 0 : 1 + this.random.int(3));
        return;
      }
      case 'unavailable':
        this.retry(client, outstanding, reply.from, now, 1 + this.random.int(3));
        return;
      default:
        assertNever(body);
    }
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
