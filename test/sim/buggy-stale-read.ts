/**
 * A deliberately broken driver, for the simulator's self-test: any member answers a read from its
 * own state machine at once, without ReadIndex. A follower that lags, or a deposed leader cut off
 * by a partition, serves a stale value, which the linearizability check must catch.
 */

import type { ClientRequest } from './client-protocol.js';
import { SimMember } from './sim-member.js';
import type { MemberFactory } from './world.js';

export class BuggyStaleReadMember extends SimMember {
  protected override startRead(request: ClientRequest): void {
    const machine = this.machine;
    if (machine === undefined) return;
    // BUG (on purpose): no read index, no leadership check.
    this.answer(request, { kind: 'ok', output: { kind: 'get', value: machine.get(request.input.key) } });
  }
}

export const createBuggyStaleReadMember: MemberFactory = (id, env, random, bootstrap) => new BuggyStaleReadMember(id, env, random, bootstrap);
