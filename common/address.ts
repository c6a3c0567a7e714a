/**
 * Node addresses shared by the manager and the agent (pure).
 */

/**
 * The underlay IP of a node from the address it reports (`IP:PORT`, its gRPC listen address):
 * the IP without the port. Anything else (a bare IP, a host name) is returned as it is.
 */
export function underlayIp(addr: string): string {
  return /^\d+\.\d+\.\d+\.\d+:\d+$/.test(addr) ? addr.slice(0, addr.lastIndexOf(':')) : addr;
}

/**
 * The network id of a task's attachment to its host's bridge: the agent reports its address
 * there (no allocator hands it out), and managers keep it beside the overlay attachments.
 */
export const HOST_BRIDGE_NETWORK = 'bridge';
