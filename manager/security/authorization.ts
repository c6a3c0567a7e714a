/**
 * Who may call what on a manager's gRPC port. Every RPC of every service declares the roles it
 * allows (a table the compiler checks for completeness); one server interceptor enforces it
 * before any handler runs, refuses nodes on the cluster's deny list, and cuts off the open calls
 * of a node the moment it is denied.
 */
import * as grpc from '@grpc/grpc-js';
import { peerIdentity, type CertificateIdentity, type NodeRole } from '../../pki/index.js';
import { NodeCAService, NodeJoinService } from '../../proto/skiff/v1/ca.js';
import { ControlService } from '../../proto/skiff/v1/control.js';
import { DispatcherService } from '../../proto/skiff/v1/dispatcher.js';
import { RaftService } from '../../proto/skiff/v1/raft.js';

/** `anyone` needs no certificate at all (the join port, where the join token is checked instead). */
export type CallerRole = NodeRole | 'anyone';

const ADMIN: readonly CallerRole[] = ['admin', 'manager'];
const NODES: readonly CallerRole[] = ['worker', 'manager'];
const MANAGERS: readonly CallerRole[] = ['manager'];
const ANYONE: readonly CallerRole[] = ['anyone'];

type RolesOf<Service> = { readonly [Method in keyof Service]: readonly CallerRole[] };

const CONTROL_ROLES: RolesOf<typeof ControlService> = {
  listNodes: ADMIN,
  getNode: ADMIN,
  createService: ADMIN,
  getService: ADMIN,
  listServices: ADMIN,
  updateService: ADMIN,
  removeService: ADMIN,
  rebalanceService: ADMIN,
  rollbackService: ADMIN,
  switchService: ADMIN,
  promoteService: ADMIN,
  listTasks: ADMIN,
  getCluster: ADMIN,
  updateCluster: ADMIN,
  getUnlockKey: ADMIN,
  updateNode: ADMIN,
  removeNode: ADMIN,
  rotateRootCa: ADMIN,
  createSecret: ADMIN,
  getSecret: ADMIN,
  listSecrets: ADMIN,
  removeSecret: ADMIN,
  updateSecret: ADMIN,
  createConfig: ADMIN,
  getConfig: ADMIN,
  listConfigs: ADMIN,
  removeConfig: ADMIN,
  updateConfig: ADMIN,
  createNetwork: ADMIN,
  getNetwork: ADMIN,
  listNetworks: ADMIN,
  removeNetwork: ADMIN,
  issueAdminCredential: ADMIN,
  taskLogs: ADMIN,
  execTask: ADMIN,
  imageCommand: ADMIN,
  loadImage: ADMIN,
  volumeCommand: ADMIN,
  // Only on a locked manager's local socket; never over the network.
  unlock: [],
};
const DISPATCHER_ROLES: RolesOf<typeof DispatcherService> = { session: NODES, attach: NODES };
const RAFT_ROLES: RolesOf<typeof RaftService> = { send: MANAGERS, forwardProposal: MANAGERS, join: MANAGERS, readIndex: MANAGERS };
// The CLI renews its admin credential too (it gets an admin certificate back, never a node's).
const NODE_CA_ROLES: RolesOf<typeof NodeCAService> = { renewNodeCertificate: ['worker', 'manager', 'admin'] };
const NODE_JOIN_ROLES: RolesOf<typeof NodeJoinService> = { issueNodeCertificate: ANYONE };

/** Roles allowed per full method path (`/skiff.v1.Control/ListNodes`). */
export const RPC_ROLES: ReadonlyMap<string, readonly CallerRole[]> = new Map(
  (
    [
      [ControlService, CONTROL_ROLES],
      [DispatcherService, DISPATCHER_ROLES],
      [RaftService, RAFT_ROLES],
      [NodeCAService, NODE_CA_ROLES],
      [NodeJoinService, NODE_JOIN_ROLES],
    ] as [Record<string, { path: string }>, Record<string, readonly CallerRole[]>][]
  ).flatMap(([service, roles]) => Object.entries(service).map(([method, definition]) => [definition.path, roles[method] ?? []] as const)),
);

export type Verdict = { allowed: true; identity: CertificateIdentity | undefined } | { allowed: false; code: grpc.status; message: string };

/** The decision for one call, from its path and the verified peer identity. */
export function authorize(path: string, identity: CertificateIdentity | undefined, clusterId: string, denied: (nodeId: string) => boolean): Verdict {
  const roles = RPC_ROLES.get(path);
  if (roles === undefined || roles.length === 0) return { allowed: false, code: grpc.status.PERMISSION_DENIED, message: `cannot call ${path}: no role may call it over the network` };
  if (roles.includes('anyone')) return { allowed: true, identity };
  if (identity === undefined) return { allowed: false, code: grpc.status.UNAUTHENTICATED, message: `cannot call ${path}: a client certificate of this cluster is required` };
  if (identity.clusterId !== clusterId) return { allowed: false, code: grpc.status.PERMISSION_DENIED, message: `cannot call ${path}: the certificate is for cluster ${identity.clusterId}, not ${clusterId}` };
  if (denied(identity.nodeId)) return { allowed: false, code: grpc.status.PERMISSION_DENIED, message: `cannot call ${path}: node ${identity.nodeId} was removed from the cluster` };
  if (!roles.includes(identity.role)) {
    return { allowed: false, code: grpc.status.PERMISSION_DENIED, message: `cannot call ${path}: requires a ${roles.join(' or ')} certificate, the caller's is ${identity.role}` };
  }
  return { allowed: true, identity };
}

/**
 * Enforces RPC_ROLES on a server, and keeps every open call by node id so that `cutOff` can end
 * them. `denied` is read on every call: keep it cheap (a Set lookup).
 */
export class Authorizer {
  private readonly open = new Map<string, Set<grpc.ServerInterceptingCall>>();

  constructor(
    private readonly clusterId: string,
    private readonly denied: (nodeId: string) => boolean,
  ) {}

  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    let nodeId: string | undefined;
    const intercepting: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, forward) => {
            const verdict = authorize(method.path, peerIdentity(call), this.clusterId, this.denied);
            if (!verdict.allowed) {
              intercepting.sendStatus({ code: verdict.code, details: verdict.message });
              return;
            }
            nodeId = verdict.identity?.nodeId;
            if (nodeId !== undefined) this.track(nodeId, intercepting);
            forward(metadata);
          },
          onCancel: () => this.untrack(nodeId, intercepting),
        });
      },
      sendStatus: (status, forward) => {
        this.untrack(nodeId, intercepting);
        forward(status);
      },
    });
    return intercepting;
  };

  /** Ends every open call of `nodeId` with PERMISSION_DENIED (it was just removed). */
  cutOff(nodeId: string): number {
    const calls = this.open.get(nodeId);
    if (calls === undefined) return 0;
    this.open.delete(nodeId);
    for (const call of calls) call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details: `node ${nodeId} was removed from the cluster` });
    return calls.size;
  }

  private track(nodeId: string, call: grpc.ServerInterceptingCall): void {
    let calls = this.open.get(nodeId);
    if (calls === undefined) this.open.set(nodeId, (calls = new Set()));
    calls.add(call);
  }

  private untrack(nodeId: string | undefined, call: grpc.ServerInterceptingCall): void {
    if (nodeId === undefined) return;
    const calls = this.open.get(nodeId);
    calls?.delete(call);
    if (calls?.size === 0) this.open.delete(nodeId);
  }
}
