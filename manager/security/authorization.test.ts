import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { NodeCAService, NodeJoinService } from '../../proto/skiff/v1/ca.js';
import { ControlService } from '../../proto/skiff/v1/control.js';
import { DispatcherService } from '../../proto/skiff/v1/dispatcher.js';
import { RaftService } from '../../proto/skiff/v1/raft.js';
import { RPC_ROLES, authorize } from './authorization.js';

const CLUSTER = 'c1';
const id = (role: 'manager' | 'worker' | 'admin', nodeId = `${role}-1`, clusterId = CLUSTER) => ({ nodeId, role, clusterId });
const nobodyDenied = () => false;

describe('authorization', () => {
  it('declares roles for every method of every served service', () => {
    const paths = [ControlService, DispatcherService, RaftService, NodeCAService, NodeJoinService].flatMap((service) => Object.values(service).map((method) => method.path));
    expect(paths.length).toBeGreaterThan(25);
    for (const path of paths) expect(RPC_ROLES.has(path), path).toBe(true);
  });

  it('refuses a worker on every control and raft RPC, naming the required role', () => {
    for (const method of [...Object.values(ControlService), ...Object.values(RaftService)]) {
      const verdict = authorize(method.path, id('worker'), CLUSTER, nobodyDenied);
      expect(verdict.allowed, method.path).toBe(false);
      if (!verdict.allowed) {
        expect(verdict.code).toBe(grpc.status.PERMISSION_DENIED);
        expect(verdict.message).toMatch(/requires a .* certificate, the caller's is worker|no role may call it/);
      }
    }
  });

  it('lets admins use the control API but not the dispatcher or raft', () => {
    expect(authorize(ControlService.listNodes.path, id('admin'), CLUSTER, nobodyDenied).allowed).toBe(true);
    expect(authorize(DispatcherService.session.path, id('admin'), CLUSTER, nobodyDenied).allowed).toBe(false);
    expect(authorize(RaftService.send.path, id('admin'), CLUSTER, nobodyDenied).allowed).toBe(false);
    expect(authorize(RaftService.send.path, id('manager'), CLUSTER, nobodyDenied).allowed).toBe(true);
    expect(authorize(NodeCAService.renewNodeCertificate.path, id('worker'), CLUSTER, nobodyDenied).allowed).toBe(true);
    // The CLI renews its admin credential (node-ca.ts keeps it an admin one).
    expect(authorize(NodeCAService.renewNodeCertificate.path, id('admin'), CLUSTER, nobodyDenied).allowed).toBe(true);
  });

  it('refuses callers without a certificate, from another cluster, or on the deny list', () => {
    const none = authorize(ControlService.listNodes.path, undefined, CLUSTER, nobodyDenied);
    expect(none).toMatchObject({ allowed: false, code: grpc.status.UNAUTHENTICATED });
    const foreign = authorize(ControlService.listNodes.path, id('admin', 'a', 'other'), CLUSTER, nobodyDenied);
    expect(foreign).toMatchObject({ allowed: false, code: grpc.status.PERMISSION_DENIED });
    const removed = authorize(DispatcherService.session.path, id('worker', 'gone'), CLUSTER, (nodeId) => nodeId === 'gone');
    expect(removed).toMatchObject({ allowed: false, message: expect.stringContaining('gone was removed') });
  });

  it('lets anyone reach the join RPC (the token is checked there), and nothing reach unlock remotely', () => {
    expect(authorize(NodeJoinService.issueNodeCertificate.path, undefined, CLUSTER, nobodyDenied).allowed).toBe(true);
    expect(authorize(ControlService.unlock.path, id('admin'), CLUSTER, nobodyDenied).allowed).toBe(false);
    expect(authorize('/skiff.v1.Unknown/Method', id('manager'), CLUSTER, nobodyDenied).allowed).toBe(false);
  });
});
