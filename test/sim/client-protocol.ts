/**
 * What simulated clients and members say to each other. Clients talk to one member at a time; a
 * member answers a write once it has applied it, a read once its read index is applied, and
 * redirects a client that did not reach the leader. A lost request or reply shows up as the
 * client's timeout.
 */

import type { MemberId } from '../../manager/raft/core/types.js';
import type { KvInput, KvOutput } from './kv-model.js';

export interface ClientRequest {
  clientId: string;
  /** The client's operation number; retries of one operation carry the same sequence. */
  sequence: number;
  /** Distinguishes retries, for tracing and for read request ids. */
  attempt: number;
  member: MemberId;
  input: KvInput;
}

export type ClientReplyBody =
  | { kind: 'ok'; output: KvOutput }
  | { kind: 'not_leader'; leader: MemberId }
  /** The member is the leader but cannot take the request now (e.g. a transfer, too much uncommitted). */
  | { kind: 'unavailable'; reason: string };

export interface ClientReply {
  clientId: string;
  sequence: number;
  from: MemberId;
  body: ClientReplyBody;
}
