/**
 * Turning changed networks and nodes into NetworksUpdate messages, one per session that is
 * affected. Each changed network's view is computed once per flush whatever the number of
 * sessions; sessions not on a changed network hear nothing. Pure apart from reading the index.
 */
import type { NetworksUpdate, NetworkView } from '../../proto/skiff/v1/dispatcher.js';
import type { NetworkChanges, NetworkIndex } from './network-views.js';

/** Views per NetworksUpdate message at most; a larger set is split (the first keeps `full`). */
export const MAX_VIEWS_PER_MESSAGE = 32;

/** What the flush needs of a session: its node and the networks it was sent (kept by the session). */
export interface NetworkSession {
  nodeId: string;
  /** Network ids whose views this session sent and did not remove since. */
  networksSent: ReadonlySet<string>;
  /** Writes the update and records it in networksSent. */
  sendNetworks(update: NetworksUpdate): void;
}

type ViewSource = Pick<NetworkIndex, 'view' | 'networksOfNode' | 'nodesOfNetwork'>;

function chunked(full: boolean, views: NetworkView[], removed: string[]): NetworksUpdate[] {
  const updates: NetworksUpdate[] = [{ full, views: views.slice(0, MAX_VIEWS_PER_MESSAGE), removed }];
  for (let offset = MAX_VIEWS_PER_MESSAGE; offset < views.length; offset += MAX_VIEWS_PER_MESSAGE) {
    updates.push({ full: false, views: views.slice(offset, offset + MAX_VIEWS_PER_MESSAGE), removed: [] });
  }
  return updates;
}

/** The messages that give a new session of `nodeId` every network it has tasks on. */
export function fullNetworkUpdates(index: ViewSource, nodeId: string): NetworksUpdate[] {
  const views = index.networksOfNode(nodeId).map((networkId) => index.view(networkId)).filter((view) => view !== undefined);
  return chunked(true, views, []);
}

/**
 * For each session affected by `changes`: the views of its networks that changed or that it
 * newly needs, and the ids of those it no longer needs (its last task there ended, or the
 * network is gone).
 */
export function networkUpdates<S extends NetworkSession>(index: ViewSource, changes: NetworkChanges, sessions: ReadonlyMap<string, S>): Map<S, NetworksUpdate[]> {
  const views = new Map<string, NetworkView | undefined>();
  const viewOf = (networkId: string): NetworkView | undefined => {
    if (!views.has(networkId)) views.set(networkId, index.view(networkId));
    return views.get(networkId);
  };
  const pending = new Map<S, { views: Map<string, NetworkView>; removed: Set<string> }>();
  const entry = (session: S): { views: Map<string, NetworkView>; removed: Set<string> } => {
    let value = pending.get(session);
    if (value === undefined) pending.set(session, (value = { views: new Map(), removed: new Set() }));
    return value;
  };
  for (const nodeId of changes.nodes) {
    const session = sessions.get(nodeId);
    if (session === undefined) continue;
    const needed = new Set(index.networksOfNode(nodeId).filter((networkId) => viewOf(networkId) !== undefined));
    for (const networkId of needed) {
      const view = viewOf(networkId);
      if (!session.networksSent.has(networkId) && view !== undefined) entry(session).views.set(networkId, view);
    }
    for (const networkId of session.networksSent) if (!needed.has(networkId)) entry(session).removed.add(networkId);
  }
  for (const networkId of changes.networks) {
    const view = viewOf(networkId);
    if (view === undefined) continue;
    for (const nodeId of index.nodesOfNetwork(networkId)) {
      const session = sessions.get(nodeId);
      if (session !== undefined && !entry(session).removed.has(networkId)) entry(session).views.set(networkId, view);
    }
  }
  const result = new Map<S, NetworksUpdate[]>();
  for (const [session, { views: changed, removed }] of pending) {
    if (changed.size > 0 || removed.size > 0) result.set(session, chunked(false, [...changed.values()], [...removed]));
  }
  return result;
}
