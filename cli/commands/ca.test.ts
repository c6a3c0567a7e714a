import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../proto/skiff/v1/objects.js';
import { fakeNode } from '../../manager/orchestrator/testing/fake-objects.js';
import { rotationProgressLine, rotationTimeoutMessage } from './ca.js';

const rotating = { rootCa: { caCertPem: 'new', caKeyPem: '', caDigest: 'new-digest', previousCaCertPem: 'old', crossSignedCaCertPem: 'cross' } } as Cluster;
const nodes = [fakeNode('a', { certCaDigest: 'new-digest' }), fakeNode('b', { certCaDigest: 'old-digest' }), fakeNode('c', { certCaDigest: 'new-digest' })];

describe('ca rotate progress', () => {
  it('ca rotate counts the nodes that hold a certificate from the new root', () => {
    expect(rotationProgressLine(rotating, nodes)).toBe('root rotation: 2 of 3 nodes hold a certificate from the new root');
  });

  it('ca rotate names the nodes that have not renewed on timeout, and how to let the rotation finish', () => {
    const message = rotationTimeoutMessage(rotating, nodes, 120_000);
    expect(message).toContain('after 120 s: host-b hold no certificate from the new root yet');
    expect(message).toContain('`skiff node rm` of a node gone for good lets it finish');
  });
});
