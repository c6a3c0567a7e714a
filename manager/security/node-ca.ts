/**
 * The cluster CA as managers run it: the root certificate and key live in the Cluster object
 * (replicated, and encrypted at rest), so any manager can issue. NodeJoin turns a join token and
 * a certificate request into a node certificate; NodeCA renews a node's certificate with the
 * role the cluster wants it to have.
 */
import { isIPv4 } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import {
  DEFAULT_CERTIFICATE_LIFETIME_DAYS,
  caDigest,
  createCertificateAuthority,
  crossSignCertificateAuthority,
  issueCertificateForKey,
  joinTokensEqual,
  newJoinToken,
  newNodeId,
  parseJoinToken,
  peerIdentity,
  PkiError,
  publicKeyOfCertificateRequest,
  type CertificateAuthority,
  type NodeRole as CertRole,
} from '../../pki/index.js';
import type { NodeCAServer, NodeJoinServer } from '../../proto/skiff/v1/ca.js';
import type { Cluster, Node } from '../../proto/skiff/v1/objects.js';
import { NodeAvailability, NodeRole, NodeState } from '../../proto/skiff/v1/types.js';
import { ApiError } from '../api/errors.js';
import { toGrpcError } from '../api/status-mapping.js';
import { StoreError } from '../store/errors.js';
import type { Store, StoreReader, WriteTransaction } from '../store/store.js';

const MS_PER_DAY = 24 * 60 * 60 * 1000;
export const DEFAULT_NODE_CERT_EXPIRY_MS = DEFAULT_CERTIFICATE_LIFETIME_DAYS * MS_PER_DAY;
/** Tries to record a renewal's issuing root before the renewal fails (the node then retries). */
const MAX_RECORD_ATTEMPTS = 3;
const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;

/** The cluster object, or an UNAVAILABLE error while the first leader has not written it yet. */
export function requireCluster(reader: StoreReader): Cluster {
  const cluster = reader.list('cluster')[0];
  if (cluster?.rootCa === undefined || cluster.rootCa.caKeyPem === '') throw new ApiError('unavailable', 'cannot issue certificates: the cluster CA is not in the store yet (the manager is starting)');
  return cluster;
}

/** The CA that signs, from the cluster object. */
export function signingCa(cluster: Cluster): CertificateAuthority {
  return { clusterId: cluster.meta?.id ?? '', certPem: cluster.rootCa?.caCertPem ?? '', keyPem: cluster.rootCa?.caKeyPem ?? '' };
}

/** Every CA certificate nodes must trust now: the current root, then (during rotation) the previous. */
export function trustBundle(cluster: Cluster): string {
  return cluster.rootCaCertPem;
}

export function certLifetimeMs(cluster: Cluster): number {
  const configured = cluster.spec?.nodeCertExpiryMs ?? 0;
  return configured > 0 ? configured : DEFAULT_NODE_CERT_EXPIRY_MS;
}

/**
 * Adds to `transaction` what a cluster needs before anyone can join: the CA (when this manager
 * holds one and the store does not yet) and both join tokens. A no-op when all are there.
 */
export function ensureClusterSecurity(transaction: WriteTransaction, cluster: Cluster, ca: CertificateAuthority | undefined, tokens?: { worker: string; manager: string }): void {
  let next = cluster;
  if ((next.rootCa === undefined || next.rootCa.caKeyPem === '') && ca !== undefined) {
    next = {
      ...next,
      rootCaCertPem: ca.certPem,
      rootCa: { caCertPem: ca.certPem, caKeyPem: ca.keyPem, caDigest: caDigest(ca.certPem), previousCaCertPem: '', crossSignedCaCertPem: '' },
    };
  }
  if (next.rootCa !== undefined && next.joinTokens === undefined) {
    next = { ...next, joinTokens: tokens ?? { worker: newJoinToken(next.rootCa.caDigest), manager: newJoinToken(next.rootCa.caDigest) } };
  }
  if (next !== cluster) transaction.update('cluster', next);
}

/** The cluster as the API shows it: never the CA key or the unlock key. */
export function redactCluster(cluster: Cluster): Cluster {
  return {
    ...cluster,
    rootCa: cluster.rootCa === undefined ? undefined : { ...cluster.rootCa, caKeyPem: '' },
    unlockKey: '',
  };
}

/** The role a join token grants, or an error that says why the token is refused. */
export function roleOfJoinToken(cluster: Cluster, token: string): CertRole {
  const parsed = parseJoinToken(token);
  const digest = cluster.rootCa?.caDigest ?? '';
  if (parsed.caDigest !== digest) {
    throw new ApiError('permission_denied', `cannot join: the token is for the CA with digest ${parsed.caDigest}, but this cluster's CA has digest ${digest}`);
  }
  if (cluster.joinTokens !== undefined && joinTokensEqual(token.trim(), cluster.joinTokens.manager)) return 'manager';
  if (cluster.joinTokens !== undefined && joinTokensEqual(token.trim(), cluster.joinTokens.worker)) return 'worker';
  throw new ApiError('permission_denied', 'cannot join: the join token is not valid (it was rotated, or mistyped)');
}

function ipOf(field: string, addr: string): string {
  const ip = addr.includes(':') ? addr.slice(0, addr.lastIndexOf(':')) : addr;
  if (!isIPv4(ip)) throw new ApiError('invalid_argument', `cannot issue certificate: ${field} "${addr}" is not an IPv4 ip:port`);
  return ip;
}

async function issue(cluster: Cluster, nodeId: string, role: CertRole, csr: Uint8Array, addr: string, hostname: string): Promise<string> {
  const publicKey = await publicKeyOfCertificateRequest(csr);
  // During a CA rotation the chain carries the cross-signed root: peers that trust only the old root verify it.
  const cross = cluster.rootCa?.crossSignedCaCertPem ?? '';
  const leaf = await issueCertificateForKey(
    signingCa(cluster),
    {
      commonName: nodeId,
      role,
      lifetimeMs: certLifetimeMs(cluster),
      ipAddresses: role === 'manager' ? [ipOf('addr', addr)] : [],
      dnsNames: HOSTNAME.test(hostname) ? [hostname] : [],
    },
    publicKey,
  );
  return cross === '' ? leaf : `${leaf.trimEnd()}\n${cross}`;
}

/** An admin certificate (the CLI's) for the key of `csr`: no address, no hostname. */
export function issueAdminCertificate(cluster: Cluster, adminId: string, csr: Uint8Array): Promise<string> {
  return issue(cluster, adminId, 'admin', csr, '', '');
}

/**
 * `skiff ca rotate`: a new root for the same cluster, cross-signed by the current one. Both roots
 * are trusted from now on; join tokens keep their secrets but pin the new root.
 */
export async function rotatedRootCa(cluster: Cluster): Promise<Cluster> {
  const previous = signingCa(cluster);
  const next = await createCertificateAuthority({ clusterId: previous.clusterId });
  const cross = await crossSignCertificateAuthority(previous, next);
  const digest = caDigest(next.certPem);
  const repin = (token: string): string => {
    const parts = token.split('-');
    return parts.length === 4 ? [parts[0], parts[1], digest, parts[3]].join('-') : newJoinToken(digest);
  };
  return {
    ...cluster,
    rootCaCertPem: `${next.certPem.trimEnd()}\n${previous.certPem}`,
    rootCa: { caCertPem: next.certPem, caKeyPem: next.keyPem, caDigest: digest, previousCaCertPem: previous.certPem, crossSignedCaCertPem: cross },
    joinTokens: { worker: repin(cluster.joinTokens?.worker ?? ''), manager: repin(cluster.joinTokens?.manager ?? '') },
  };
}

/** The digest of the root that signs certificates issued from `cluster` now (Node.certCaDigest). */
export function issuingDigest(cluster: Cluster): string {
  return cluster.rootCa?.caDigest ?? '';
}

/** Writes which root signed node `nodeId`'s newest certificate; nothing when it is known already or the node is gone. */
async function recordIssuingRoot(store: Store, nodeId: string, digest: string): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await store.update((transaction, reader) => {
        const node = reader.get('node', nodeId);
        if (node !== undefined && node.certCaDigest !== digest) transaction.update('node', { ...node, certCaDigest: digest });
      });
      return;
    } catch (error) {
      // A heartbeat or status write to the same node raced this one: read it again.
      if (!(error instanceof StoreError && error.code === 'version_conflict') || attempt >= MAX_RECORD_ATTEMPTS) throw error;
    }
  }
}

function toProtoRole(role: CertRole): NodeRole {
  return role === 'manager' ? NodeRole.NODE_ROLE_MANAGER : NodeRole.NODE_ROLE_WORKER;
}

function unaryHandler<Request, Response>(handler: (request: Request, call: grpc.ServerUnaryCall<Request, Response>) => Promise<Response>): grpc.handleUnaryCall<Request, Response> {
  return (call, callback) => {
    handler(call.request, call).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toGrpcError(error instanceof PkiError ? new ApiError('invalid_argument', error.message) : error)),
    );
  };
}

export interface NodeCaOptions {
  /** Whether `nodeId` is a voter or learner of the Raft group (a demoted manager stays one until removed). */
  isRaftMember: (nodeId: string) => boolean;
  /** This manager's node id: a manager no longer in the group has a stale store and issues nothing. */
  selfId: string;
  clock: () => number;
}

/** NodeJoin: a token and a certificate request in, a node id and certificate out. */
export function nodeJoinHandlers(store: Store, options: NodeCaOptions): NodeJoinServer {
  return {
    issueNodeCertificate: unaryHandler(async (request) => {
      const cluster = requireCluster(store.reader);
      const role = roleOfJoinToken(cluster, request.token);
      const nodeId = newNodeId();
      const certPem = await issue(cluster, nodeId, role, request.csr, request.addr, request.hostname);
      // The node is known from the moment it holds a certificate: `node ls` shows it at once.
      const now = options.clock();
      await store.update((transaction) => {
        const node: Node = {
          meta: { id: nodeId, version: 0, createdAtMs: now, updatedAtMs: now },
          spec: { desiredRole: toProtoRole(role), availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
          description: { hostname: request.hostname, platform: undefined, resources: undefined, engineVersion: '' },
          status: { state: NodeState.NODE_STATE_UNKNOWN, message: 'joined; waiting for its first session', addr: request.addr === '' ? '' : ipOf('addr', request.addr) },
          managerStatus: role === 'manager' ? { addr: request.addr, leader: false, reachability: 'unknown', raftId: 0 } : undefined,
          role: toProtoRole(role),
          certCaDigest: issuingDigest(cluster),
        };
        transaction.create('node', node);
      });
      return { nodeId, certPem, caCertPem: trustBundle(cluster), role: toProtoRole(role) };
    }),
  };
}

/**
 * The role a renewing node gets: manager when the cluster wants it to be one, and also while it
 * is still a member of the Raft group (a demotion finishes by removing it from the group first).
 */
export function renewalRole(node: Node | undefined, fallback: CertRole, isRaftMember: boolean): CertRole {
  if (node === undefined) return fallback;
  if (node.spec?.desiredRole === NodeRole.NODE_ROLE_MANAGER || isRaftMember) return 'manager';
  return 'worker';
}

/**
 * NodeCA: renewal with the certificate the node (or the CLI's admin credential) has; the
 * interceptor checked role and deny list. The role never changes to or from admin here.
 */
export function nodeCaHandlers(store: Store, options: NodeCaOptions): NodeCAServer {
  return {
    renewNodeCertificate: unaryHandler(async (request, call) => {
      const identity = peerIdentity(call);
      if (identity === undefined) throw new ApiError('permission_denied', 'cannot renew: no client certificate');
      // UNAVAILABLE without a "cannot" reason: the node asks another manager.
      if (!options.isRaftMember(options.selfId)) throw new ApiError('unavailable', 'this manager is not in the raft group (demoted or removed); ask another manager');
      // Read at least the state the node was told of: a renewal that a trust-bundle change
      // triggered must get the new bundle even from a follower that lags behind the leader.
      await store.readBarrier();
      const cluster = requireCluster(store.reader);
      // An admin credential (the CLI's) renews as an admin credential, never as a node's; it is no node.
      if (identity.role === 'admin') {
        const certPem = await issueAdminCertificate(cluster, identity.nodeId, request.csr);
        return { certPem, caCertPem: trustBundle(cluster), role: NodeRole.NODE_ROLE_WORKER };
      }
      const node = store.reader.get('node', identity.nodeId);
      const role = renewalRole(node, identity.role, options.isRaftMember(identity.nodeId));
      const addr = request.addr !== '' ? request.addr : (node?.managerStatus?.addr ?? '');
      const certPem = await issue(cluster, identity.nodeId, role, request.csr, addr, node?.description?.hostname ?? '');
      // Recorded before the node has the certificate: a failed write fails the renewal (the node
      // retries), so a root rotation never finishes while a node still holds an old-root one.
      await recordIssuingRoot(store, identity.nodeId, issuingDigest(cluster));
      return { certPem, caCertPem: trustBundle(cluster), role: toProtoRole(role) };
    }),
  };
}
