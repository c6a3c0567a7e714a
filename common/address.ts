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
