// Waiting until the cluster itself sees the lab's hosts: a skiffd that has started is not yet a
// node the scheduler can use. Asks the first manager over its root-only local control socket.
import * as grpc from '@grpc/grpc-js';
import { ControlClient, type ListNodesResponse } from '../../proto/skiff/v1/control.js';
import { NodeState } from '../../proto/skiff/v1/types.js';
import type { LabHost, LabState } from './state.js';

/** How long `lab up` waits for every host to be a ready node. */
export const NODES_READY_TIMEOUT_MS = 60_000;
const POLL_MS = 100;
const CALL_TIMEOUT_MS = 2_000;

function listNodes(client: InstanceType<typeof ControlClient>): Promise<ListNodesResponse> {
  return new Promise((resolve, reject) =>
    client.listNodes({}, new grpc.Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (error, value) => (error === null ? resolve(value) : reject(error))),
  );
}

/** Resolves once every host in `hosts` is a ready node; throws naming the missing ones otherwise. */
export async function waitNodesReady(state: LabState, hosts: readonly LabHost[], timeoutMs = NODES_READY_TIMEOUT_MS): Promise<void> {
  const manager = state.hosts.find((host) => host.role === 'manager');
  if (manager === undefined) throw new Error(`cannot check nodes: lab ${state.name} has no manager`);
  const client = new ControlClient(`unix://${manager.controlSocket}`, grpc.credentials.createInsecure());
  const deadline = Date.now() + timeoutMs;
  let missing = hosts.map((host) => host.name);
  try {
    while (Date.now() < deadline) {
      try {
        const { nodes } = await listNodes(client);
        const ready = new Set(nodes.filter((node) => node.status?.state === NodeState.NODE_STATE_READY).map((node) => node.meta?.id));
        missing = hosts.filter((host) => !ready.has(host.nodeId)).map((host) => host.name);
        if (missing.length === 0) return;
      } catch {
        // The manager may still be electing itself; keep asking until the deadline.
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    client.close();
  }
  throw new Error(`cannot bring up lab ${state.name}: ${missing.join(', ')} did not become ready nodes within ${timeoutMs} ms`);
}
