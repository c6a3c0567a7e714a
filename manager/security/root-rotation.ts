/**
 * The end of a root CA rotation (`skiff ca rotate`), as Swarm ends one: while the cluster trusts
 * the previous root too, the leader waits until every node in the store holds a certificate from
 * the current root (Node.certCaDigest, recorded by NodeCA), then trusts the current root only. A
 * node that is down keeps the rotation open until it renews or is removed (`skiff node rm`).
 * Admin credentials are no nodes: they are not waited for.
 */
import type { Cluster, Node } from '../../proto/skiff/v1/objects.js';
import type { StoreReader, WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';
import type { Controller } from '../orchestrator/controller-loop.js';

/**
 * What nodes must renew for when it changes: the signing root (a rotation starts) or the trust
 * bundle (a rotation ends, and nodes must stop trusting the old root).
 */
export function rootTrustKey(cluster: Cluster | undefined): string {
  return `${cluster?.rootCa?.caDigest ?? ''}\n${cluster?.rootCaCertPem ?? ''}`;
}

/** Whether the cluster trusts a previous root besides the current one. */
export function rotationInProgress(cluster: Cluster | undefined): boolean {
  return (cluster?.rootCa?.previousCaCertPem ?? '') !== '';
}

/** The nodes whose newest certificate is not from the cluster's current root. */
export function nodesOffCurrentRoot(cluster: Cluster | undefined, nodes: readonly Node[]): Node[] {
  const digest = cluster?.rootCa?.caDigest ?? '';
  return nodes.filter((node) => node.certCaDigest !== digest);
}

/**
 * The cluster with the rotation finished (the current root alone trusted, no previous or
 * cross-signed root), or undefined when there is none to finish or a node still holds an
 * old-root certificate.
 */
export function finishedRotation(cluster: Cluster | undefined, nodes: readonly Node[]): Cluster | undefined {
  if (cluster?.rootCa === undefined || !rotationInProgress(cluster)) return undefined;
  if (nodesOffCurrentRoot(cluster, nodes).length > 0) return undefined;
  return {
    ...cluster,
    rootCaCertPem: cluster.rootCa.caCertPem,
    rootCa: { ...cluster.rootCa, previousCaCertPem: '', crossSignedCaCertPem: '' },
  };
}

const CLUSTER_KEY = 'cluster';

/** Runs on the leader: finishes a rotation in the transaction of the commit that made it finishable. */
export const rootRotationController: Controller = {
  name: 'root-rotation',
  *dirtyKeys(commit: StoreCommit) {
    if (commit.events.some((event) => event.kind === 'cluster' || event.kind === 'node')) yield CLUSTER_KEY;
  },
  allKeys: () => [CLUSTER_KEY],
  reconcile(_keys, transaction: WriteTransaction, reader: StoreReader) {
    // The update carries the cluster version read here: a cluster changed meanwhile (another
    // rotation, a node removal) conflicts, and the runner reconciles again.
    const cluster = reader.list('cluster')[0];
    // Node changes are frequent (sessions, status): the nodes are read only while a rotation is on.
    if (!rotationInProgress(cluster)) return undefined;
    const finished = finishedRotation(cluster, reader.list('node'));
    if (finished !== undefined) transaction.update('cluster', finished);
    return undefined;
  },
};
