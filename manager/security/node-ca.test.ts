import { describe, expect, it } from 'vitest';
import { caDigest, createCertificateAuthority, newJoinToken } from '../../pki/index.js';
import type { Cluster, Node } from '../../proto/skiff/v1/objects.js';
import { NodeRole } from '../../proto/skiff/v1/types.js';
import { redactCluster, renewalRole, roleOfJoinToken } from './node-ca.js';

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
    const node = (desired: NodeRole): Node => ({ meta: undefined, spec: { desiredRole: desired, availability: 0, labels: {} }, description: undefined, status: undefined, managerStatus: undefined, role: 0 });
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
