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

/** sockaddr_un's sun_path (108 bytes) less its terminating NUL. */
export const MAX_UNIX_SOCKET_PATH_BYTES = 107;

/**
 * Throws, naming `what` and the path, when `path` cannot be a unix socket's: longer paths do not
 * fit sockaddr_un, and libuv would silently bind a truncated one.
 */
export function checkUnixSocketPath(path: string, what: string): void {
  if (Buffer.byteLength(path) > MAX_UNIX_SOCKET_PATH_BYTES) {
    throw new Error(`cannot serve ${what} on ${path}: a unix socket path is at most ${MAX_UNIX_SOCKET_PATH_BYTES} bytes, this one has ${Buffer.byteLength(path)}`);
  }
}
