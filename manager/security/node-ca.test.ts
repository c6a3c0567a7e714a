import { X509Certificate } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { caDigest, createCertificateAuthority, createCertificateRequest, issueNodeCredentials, newJoinToken } from '../../pki/index.js';
import type { Cluster, Node } from '../../proto/skiff/v1/objects.js';
import { NodeAvailability, NodeRole } from '../../proto/skiff/v1/types.js';
import { fakeNode, tempStore } from '../orchestrator/testing/fake-objects.js';
import { nodeCaHandlers, nodeJoinHandlers, redactCluster, renewalRole, roleOfJoinToken, rotatedRootCa } from './node-ca.js';

const options = { isRaftMember: (nodeId: string) => nodeId === 'm1', selfId: 'm1', clock: () => 1_000 };

async function cluster(): Promise<Cluster> {
  const ca = await createCertificateAuthority();
  const digest = caDigest(ca.certPem);
  return {
    meta: { id: ca.clusterId, version: 1, createdAtMs: 0, updatedAtMs: 0 },
    spec: undefined,
    rootCaCertPem: ca.certPem,
    rootCa: { caCertPem: ca.certPem, caKeyPem: ca.keyPem, caDigest: digest, previousCaCertPem: '', crossSignedCaCertPem: '' },
    joinTokens: { worker: newJoinToken(digest), manager: newJoinToken(digest) },
    deniedNodes: [],
    unlockKey: 'SKFKEY-1-secret',
  };
}

describe('node CA', () => {
  it('grants the role of the token that matches', async () => {
    const c = await cluster();
    expect(roleOfJoinToken(c, c.joinTokens!.worker)).toBe('worker');
    expect(roleOfJoinToken(c, `  ${c.joinTokens!.manager}\n`)).toBe('manager');
  });

  it('refuses a token for another CA, naming both digests', async () => {
    const c = await cluster();
    const other = await cluster();
    expect(() => roleOfJoinToken(c, other.joinTokens!.worker)).toThrow(
      `the token is for the CA with digest ${other.rootCa!.caDigest}, but this cluster's CA has digest ${c.rootCa!.caDigest}`,
    );
  });

  it('refuses a rotated (or made-up) token of the right CA', async () => {
    const c = await cluster();
    expect(() => roleOfJoinToken(c, newJoinToken(c.rootCa!.caDigest))).toThrow(/not valid \(it was rotated, or mistyped\)/);
  });

  it('renews managers as managers until they have left the raft group', () => {
    const node = (desired: NodeRole): Node => ({ meta: undefined, spec: { desiredRole: desired, availability: 0, labels: {} }, description: undefined, status: undefined, managerStatus: undefined, role: 0, certCaDigest: '' });
    expect(renewalRole(node(NodeRole.NODE_ROLE_MANAGER), 'worker', false)).toBe('manager');
    expect(renewalRole(node(NodeRole.NODE_ROLE_WORKER), 'manager', true)).toBe('manager');
    expect(renewalRole(node(NodeRole.NODE_ROLE_WORKER), 'manager', false)).toBe('worker');
    expect(renewalRole(undefined, 'worker', false)).toBe('worker');
  });

  it('never shows the CA key or the unlock key', async () => {
    const c = await cluster();
    const shown = JSON.stringify(redactCluster(c));
    expect(shown).not.toContain('PRIVATE KEY');
    expect(shown).not.toContain('SKFKEY');
    expect(shown).toContain(c.joinTokens!.worker);
  });
});

/** Calls a grpc-js unary handler as the server would, with the peer certificate `certPem` (if any). */
function callUnary<Request, Response>(handler: grpc.handleUnaryCall<Request, Response>, request: Request, certPem?: string): Promise<Response> {
  const raw = certPem === undefined ? undefined : new X509Certificate(certPem).raw;
  const call = { request, getAuthContext: () => ({ sslPeerCertificate: raw === undefined ? undefined : { raw } }) };
  return new Promise((resolve, reject) => handler(call as unknown as grpc.ServerUnaryCall<Request, Response>, (error, response) => (error === null || error === undefined ? resolve(response as Response) : reject(error))));
}

describe('node CA records the issuing root', () => {
  it('records the root that signed a joining node\'s certificate on its new node', async () => {
    const temp = await tempStore();
    try {
      const current = await cluster();
      await temp.store.update((transaction) => transaction.create('cluster', current));
      const { csrDer } = await createCertificateRequest();
      const joined = await callUnary(nodeJoinHandlers(temp.store, options).issueNodeCertificate, { token: current.joinTokens?.worker ?? '', csr: csrDer, addr: '198.18.0.9:4242', hostname: 'w9' });
      expect(temp.store.reader.get('node', joined.nodeId)?.certCaDigest).toBe(current.rootCa?.caDigest);
    } finally {
      await temp.close();
    }
  });

  it('records the new root when a node renews after a rotation, keeping the rest of the node', async () => {
    const temp = await tempStore();
    try {
      const current = await cluster();
      const oldDigest = current.rootCa?.caDigest ?? '';
      const node = { ...fakeNode('w1', { certCaDigest: oldDigest }), spec: { desiredRole: NodeRole.NODE_ROLE_WORKER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: { zone: 'a' } } };
      await temp.store.update((transaction) => {
        transaction.create('cluster', current);
        transaction.create('node', node);
      });
      const oldCa = { clusterId: current.meta?.id ?? '', certPem: current.rootCa?.caCertPem ?? '', keyPem: current.rootCa?.caKeyPem ?? '' };
      const held = await issueNodeCredentials(oldCa, { nodeId: 'w1', role: 'worker' });
      const rotated = await rotatedRootCa(temp.store.reader.list('cluster')[0] ?? current);
      await temp.store.update((transaction) => transaction.update('cluster', rotated));
      const { csrDer } = await createCertificateRequest();
      const renewed = await callUnary(nodeCaHandlers(temp.store, options).renewNodeCertificate, { csr: csrDer, addr: '' }, held.certPem);
      const recorded = temp.store.reader.get('node', 'w1');
      expect(recorded?.certCaDigest).toBe(rotated.rootCa?.caDigest);
      expect(recorded?.certCaDigest).not.toBe(oldDigest);
      expect(recorded?.spec?.labels).toEqual({ zone: 'a' });
      expect(recorded?.description?.hostname).toBe('host-w1');
      expect(new X509Certificate(renewed.certPem).verify(new X509Certificate(rotated.rootCa?.caCertPem ?? '').publicKey)).toBe(true);
    } finally {
      await temp.close();
    }
  });
});
