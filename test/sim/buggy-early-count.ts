/**
 * A deliberately broken driver, for the simulator's self-test: it tells the core a Ready was
 * written (advance) as soon as it takes it, before the write is durable. The leader then counts
 * its own entries toward commit early: an entry on the leader's page cache and one follower's
 * disk counts as committed, and a leader that loses power before its fsync forgets an entry the
 * cluster acknowledged. A follower may also acknowledge entries it has not written. The safety
 * invariants or the linearizability check must catch it.
 */

import { SimMember } from './sim-member.js';
import type { MemberFactory } from './world.js';

export class BuggyEarlyCountMember extends SimMember {
  protected override advancesBeforeWrite(): boolean {
    // BUG (on purpose): the core hears the write is done before it is.
    return true;
  }
}

export const createBuggyEarlyCountMember: MemberFactory = (id, env, random, bootstrap) => new BuggyEarlyCountMember(id, env, random, bootstrap);
