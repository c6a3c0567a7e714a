/**
 * Control API handlers for the cluster as a whole: its spec, join tokens and unlock key, and
 * node role/availability changes and removal. A change that would lose the Raft quorum is
 * refused with the numbers that say why.
 */
import { MAX_CERTIFICATE_LIFETIME_DAYS, MIN_CERTIFICATE_LIFETIME_MS, PkiError, newJoinToken, newNodeId } from '../../pki/index.js';
import type { ControlServer } from '../../proto/skiff/v1/control.js';
import type { Cluster, DeniedNode, Node } from '../../proto/skiff/v1/objects.js';
import type { ClusterSpec, NodeSpec } from '../../proto/skiff/v1/specs.js';
import { NodeAvailability, NodeRole, NodeState } from '../../proto/skiff/v1/types.js';
import { newUnlockKey } from '../keys/data-key.js';
import { orphanTasksOfNode } from '../orchestrator/node-tasks.js';
import { managerAddresses } from '../manager-status.js';
import { certLifetimeMs, issueAdminCertificate, redactCluster, requireCluster, rotatedRootCa, trustBundle } from '../security/node-ca.js';
import type { Store, StoreReader } from '../store/store.js';
import { type ControlOptions, type Membership, resolveNode, unary, unaryRead } from './control-common.js';
import { ApiError } from './errors.js';

type ClusterHandlers = Pick<ControlServer, 'getCluster' | 'updateCluster' | 'getUnlockKey' | 'updateNode' | 'removeNode' | 'rotateRootCa' | 'issueAdminCredential' | 'unlock'>;

const MS_PER_DAY = 24 * 60 * 60 * 1000;
/** A P-256 certificate request is a few hundred bytes. */
const MAX_CSR_BYTES = 16 * 1024;

function currentCluster(reader: StoreReader): Cluster {
  const cluster = reader.list('cluster')[0];
  if (cluster === undefined) throw new ApiError('unavailable', 'cannot read cluster: the manager is still starting');
  return cluster;
}

/** Checks a cluster spec a user sent; errors name the field. */
export function validateClusterSpec(spec: ClusterSpec): void {
  if (spec.heartbeatPeriodMs < 100 || spec.heartbeatPeriodMs > 60_000) {
    throw new ApiError('invalid_argument', `cannot update cluster: spec.heartbeatPeriodMs ${spec.heartbeatPeriodMs} is outside [100, 60000]`);
  }
  const expiry = spec.nodeCertExpiryMs;
  if (expiry !== 0 && (expiry < MIN_CERTIFICATE_LIFETIME_MS || expiry > MAX_CERTIFICATE_LIFETIME_DAYS * MS_PER_DAY)) {
    throw new ApiError('invalid_argument', `cannot update cluster: spec.nodeCertExpiryMs ${expiry} is outside [${MIN_CERTIFICATE_LIFETIME_MS}, ${MAX_CERTIFICATE_LIFETIME_DAYS} days]`);
  }
  if (spec.taskHistoryLimit > 1000) throw new ApiError('invalid_argument', `cannot update cluster: spec.taskHistoryLimit ${spec.taskHistoryLimit} is above 1000`);
}

function requireMembership(options: ControlOptions, action: string): Membership {
  const membership = options.membership;
  if (membership === undefined) throw new ApiError('failed_precondition', `cannot ${action}: this manager has no raft group`);
  // UNAVAILABLE without a "cannot" reason: the CLI moves on to the next manager, the leader.
  if (!membership.leading) throw new ApiError('unavailable', `not the leader; ${action} must go to the leader`);
  return membership;
}

const nameOf = (node: Node): string => node.description?.hostname || (node.meta?.id ?? '');

export function clusterHandlers(store: Store, options: ControlOptions): ClusterHandlers {
  const reader = store.reader;
  const clock = options.clock ?? Date.now;

  const demote = async (node: Node, spec: NodeSpec): Promise<void> => {
    const id = node.meta?.id ?? '';
    const membership = requireMembership(options, `demote ${nameOf(node)}`);
    if (membership.isMember(id)) {
      const blocker = membership.removalBlocker(id);
      if (blocker !== undefined) throw new ApiError('failed_precondition', `cannot demote ${nameOf(node)}: ${blocker}`);
      if (id === membership.selfId) {
        // The leader cannot remove itself and go on leading: hand leadership over, and let the
        // client ask again (UNAVAILABLE without "cannot": the CLI moves on to the next manager).
        const successor = await membership.transferLeadershipAway().catch((error: unknown) => {
          throw new ApiError('failed_precondition', `cannot demote ${nameOf(node)}: it leads and ${error instanceof Error ? error.message : String(error)}`);
        });
        throw new ApiError('unavailable', `leadership moved from ${nameOf(node)} to ${successor}; send the demotion to the new leader`);
      }
    }
    await store.update((transaction) => transaction.update('node', { ...node, spec }));
    await membership.removeMember(id);
    await store.update((transaction, current) => {
      const latest = current.get('node', id);
      if (latest !== undefined) transaction.update('node', { ...latest, role: NodeRole.NODE_ROLE_WORKER, managerStatus: undefined });
    });
  };

  const promote = async (node: Node, spec: NodeSpec): Promise<void> => {
    const membership = requireMembership(options, `promote ${nameOf(node)}`);
    const { total, reachable } = membership.voters();
    const quorum = Math.floor(total / 2) + 1;
    if (reachable < quorum) {
      throw new ApiError('failed_precondition', `cannot promote ${nameOf(node)}: the cluster has no quorum now (${reachable} of ${total} managers reachable, ${quorum} needed)`);
    }
    await store.update((transaction) => transaction.update('node', { ...node, spec }));
  };

  return {
    getCluster: unaryRead(store, options, () => ({ cluster: redactCluster(currentCluster(reader)) })),

    updateCluster: unary(options, async (request) => {
      const cluster = currentCluster(reader);
      if (request.version !== cluster.meta?.version) {
        throw new ApiError('failed_precondition', `cannot update cluster: it changed since it was read (version ${request.version}, now ${cluster.meta?.version ?? 0}); read it again`);
      }
      let next: Cluster = cluster;
      if (request.spec !== undefined) {
        validateClusterSpec(request.spec);
        next = { ...next, spec: request.spec };
        const wasLocked = cluster.spec?.autolock === true;
        if (request.spec.autolock && !wasLocked) next = { ...next, unlockKey: newUnlockKey() };
        if (!request.spec.autolock) next = { ...next, unlockKey: '' };
      }
      if (request.rotateUnlockKey) {
        if (next.spec?.autolock !== true) throw new ApiError('failed_precondition', 'cannot rotate the unlock key: autolock is off (skiff autolock enable)');
        next = { ...next, unlockKey: newUnlockKey() };
      }
      const digest = cluster.rootCa?.caDigest ?? '';
      if ((request.rotateWorkerToken || request.rotateManagerToken) && digest === '') throw new ApiError('unavailable', 'cannot rotate join tokens: the cluster CA is not in the store yet');
      const tokens = next.joinTokens ?? { worker: '', manager: '' };
      if (request.rotateWorkerToken) next = { ...next, joinTokens: { ...tokens, worker: newJoinToken(digest) } };
      if (request.rotateManagerToken) next = { ...next, joinTokens: { ...(next.joinTokens ?? tokens), manager: newJoinToken(digest) } };
      if (next !== cluster) await store.update((transaction) => transaction.update('cluster', next));
      return { cluster: redactCluster(currentCluster(reader)) };
    }),

    getUnlockKey: unaryRead(store, options, () => {
      const cluster = currentCluster(reader);
      if (cluster.spec?.autolock !== true || cluster.unlockKey === '') throw new ApiError('failed_precondition', 'cannot show the unlock key: autolock is off (skiff autolock enable)');
      return { unlockKey: cluster.unlockKey };
    }),

    updateNode: unary(options, async (request) => {
      const node = resolveNode(reader, request.node);
      const spec = request.spec;
      if (spec === undefined) throw new ApiError('invalid_argument', 'cannot update node: spec is required');
      if (request.version !== node.meta?.version) {
        throw new ApiError('failed_precondition', `cannot update node ${nameOf(node)}: it changed since it was read (version ${request.version}, now ${node.meta?.version ?? 0}); read it again`);
      }
      if (!Object.values(NodeAvailability).includes(spec.availability) || spec.availability === NodeAvailability.UNRECOGNIZED) {
        throw new ApiError('invalid_argument', `cannot update node ${nameOf(node)}: spec.availability ${String(spec.availability)} is not active, pause or drain`);
      }
      if (spec.desiredRole !== NodeRole.NODE_ROLE_MANAGER && spec.desiredRole !== NodeRole.NODE_ROLE_WORKER) {
        throw new ApiError('invalid_argument', `cannot update node ${nameOf(node)}: spec.desiredRole ${String(spec.desiredRole)} is not worker or manager`);
      }
      const wasManager = node.spec?.desiredRole === NodeRole.NODE_ROLE_MANAGER;
      const toManager = spec.desiredRole === NodeRole.NODE_ROLE_MANAGER;
      if (wasManager && !toManager) await demote(node, spec);
      else if (!wasManager && toManager) await promote(node, spec);
      else await store.update((transaction) => transaction.update('node', { ...node, spec }));
      return { node: reader.get('node', node.meta?.id ?? '') };
    }),

    removeNode: unary(options, async (request) => {
      const node = resolveNode(reader, request.node);
      const id = node.meta?.id ?? '';
      if (options.membership?.isMember(id) === true || node.spec?.desiredRole === NodeRole.NODE_ROLE_MANAGER) {
        throw new ApiError('failed_precondition', `cannot remove ${nameOf(node)}: it is a manager; demote it first (skiff node demote ${nameOf(node)})`);
      }
      if (node.status?.state === NodeState.NODE_STATE_READY && !request.force) {
        throw new ApiError('failed_precondition', `cannot remove ${nameOf(node)}: it is ready; stop its skiffd first, or use --force to cut it off now`);
      }
      const now = clock();
      await store.update((transaction, current) => {
        const cluster = currentCluster(current);
        const lifetime = certLifetimeMs(cluster);
        // A denied node's certificate can be no younger than now; it expires within one lifetime.
        const denied: DeniedNode[] = [...cluster.deniedNodes.filter((entry) => entry.expiresAtMs > now && entry.nodeId !== id), { nodeId: id, removedAtMs: now, expiresAtMs: now + lifetime }];
        transaction.update('cluster', { ...cluster, deniedNodes: denied });
        orphanTasksOfNode(transaction, current, id, now, 'node was removed', 'node removed from the cluster');
        transaction.remove('node', node);
      });
      return {};
    }),

    issueAdminCredential: unary(options, async (request) => {
      if (request.csr.length === 0) throw new ApiError('invalid_argument', 'cannot issue an admin credential: csr is empty (a DER PKCS#10 certificate request)');
      if (request.csr.length > MAX_CSR_BYTES) throw new ApiError('invalid_argument', `cannot issue an admin credential: csr is ${request.csr.length} bytes, more than ${MAX_CSR_BYTES}`);
      const cluster = requireCluster(reader);
      const adminId = newNodeId();
      const certPem = await issueAdminCertificate(cluster, adminId, request.csr).catch((error: unknown) => {
        throw error instanceof PkiError ? new ApiError('invalid_argument', `cannot issue an admin credential: csr: ${error.message}`) : error;
      });
      return { adminId, certPem, caCertPem: trustBundle(cluster), managers: [...managerAddresses(reader).values()].sort() };
    }),

    rotateRootCa: unary(options, async () => {
      const cluster = currentCluster(reader);
      if (cluster.rootCa === undefined || cluster.rootCa.caKeyPem === '') throw new ApiError('unavailable', 'cannot rotate the root CA: it is not in the store yet');
      const rotated = await rotatedRootCa(cluster);
      await store.update((transaction, current) => {
        if (current.list('cluster')[0]?.meta?.version !== cluster.meta?.version) throw new ApiError('failed_precondition', 'cannot rotate the root CA: the cluster changed meanwhile; run it again');
        transaction.update('cluster', rotated);
      });
      return { cluster: redactCluster(currentCluster(reader)) };
    }),

    unlock: unary(options, () => {
      throw new ApiError('failed_precondition', 'cannot unlock: this manager is not locked');
    }),
  };
}
