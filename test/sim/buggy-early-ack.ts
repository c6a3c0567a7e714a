/**
 * A deliberately broken driver, for the simulator's self-test: it tells the client a write
 * succeeded as soon as the leader appended it, before it is committed. A leader that loses its
 * leadership before the entry commits has then acknowledged a write that never happens (a lost
 * acknowledged write), which the linearizability check must catch.
 */

import type { ClientRequest } from './client-protocol.js';
import { SimMember } from './sim-member.js';
import type { MemberFactory } from './world.js';

export class BuggyEarlyAckMember extends SimMember {
  protected override onProposed(request: ClientRequest): void {
    const input = request.input;
    // BUG (on purpose): acknowledging on append, not on apply. A cas is claimed to have swapped.
    this.answer(request, { kind: 'ok', output: input.kind === 'cas' ? { kind: 'cas', swapped: true } : { kind: 'put' } });
  }
}

export const createBuggyEarlyAckMember: MemberFactory = (id, env, random, bootstrap) => new BuggyEarlyAckMember(id, env, random, bootstrap);
