/**
 * Manager status for `node ls`: leader, reachable or unreachable. The leader knows from Raft
 * progress; a follower asks the leader (its view of its peers would be blind), and says
 * "unknown" for everyone but itself when there is no leader to ask.
 */
import * as grpc from '@grpc/grpc-js';
import { ControlClient, ListNodesResponse } from '../proto/skiff/v1/control.js';
import type { ManagerStatus } from '../proto/skiff/v1/objects.js';
import type { MemberId } from './raft/core/types.js';
import type { RaftGroup } from './raft-group.js';
import type { StoreReader } from './store/store.js';

const ASK_LEADER_TIMEOUT_MS = 2_000;

export function managerAddresses(reader: StoreReader): Map<string, string> {
  const addresses = new Map<string, string>();
  for (const node of reader.list('node')) {
    const addr = node.managerStatus?.addr ?? '';
    if (addr !== '') addresses.set(node.meta?.id ?? '', addr);
  }
  return addresses;
}

export async function managerStatuses(group: RaftGroup, reader: StoreReader, selfId: string, credentials: grpc.ChannelCredentials, channelOptions: grpc.ChannelOptions): Promise<Map<string, ManagerStatus>> {
  const status = group.status();
  const addresses = managerAddresses(reader);
  const members = [...status.conf.voters, ...status.conf.learners];
  const result = new Map<string, ManagerStatus>();
  const entry = (id: string, reachability: string): ManagerStatus => ({ addr: addresses.get(id) ?? '', leader: id === status.leader, reachability, raftId: 0 });
  if (status.role === 'leader') {
    for (const id of members) {
      const progress = status.progress.get(id as MemberId);
      result.set(id, entry(id, id === selfId || progress?.recentActive === true ? 'reachable' : 'unreachable'));
    }
    return result;
  }
  const leaderAddr = addresses.get(status.leader);
  if (status.leader !== '' && leaderAddr !== undefined) {
    const client = new ControlClient(leaderAddr, credentials, channelOptions);
    try {
      const response = await new Promise<ListNodesResponse>((resolve, reject) =>
        client.listNodes({}, new grpc.Metadata(), { deadline: Date.now() + ASK_LEADER_TIMEOUT_MS }, (error, value) => (error === null ? resolve(value) : reject(error))),
      );
      for (const node of response.nodes) if (node.managerStatus !== undefined) result.set(node.meta?.id ?? '', node.managerStatus);
      if (result.size > 0) return result;
    } catch {
      // Fall through to what this manager can tell on its own.
    } finally {
      client.close();
    }
  }
  for (const id of members) result.set(id, entry(id, id === selfId ? 'reachable' : 'unknown'));
  return result;
}
