/**
 * A deliberately broken driver, for the simulator's self-test: it writes a Ready's state but only
 * fsyncs it at the next Ready, after the messages of this one are already sent. A crash in between
 * forgets votes that were granted and entries that were acknowledged, so a member can vote twice
 * in a term or a committed entry can vanish; the safety invariants or the linearizability check
 * must catch it.
 */

import type { Ready } from '../../manager/raft/core/types.js';
import { SimMember } from './sim-member.js';
import type { MemberFactory } from './world.js';

export class BuggyLateFsyncMember extends SimMember {
  protected override persist(ready: Ready): 'persisted' | 'crashed' {
    // BUG (on purpose): the previous Ready's writes are fsynced now, this one's only next time.
    if (this.disk.hasUnsynced()) this.disk.fsync();
    if (ready.snapshot !== undefined) this.disk.writeSnapshot(ready.snapshot);
    this.disk.writeBatch(ready.entries, ready.hardState);
    return 'persisted';
  }
}

export const createBuggyLateFsyncMember: MemberFactory = (id, env, random, bootstrap) => new BuggyLateFsyncMember(id, env, random, bootstrap);
