/**
 * Where a host's runtime state lives under `stateDir`. One directory per container doubles as its
 * OCI bundle; conmon's exit files, logs and attach sockets have shared directories so that a new
 * agent finds them by listing.
 *
 *   stateDir/containers/<id>/   config.json, rootfs/ (overlay), upper/, work/, meta.json,
 *                               hosts, resolv.conf, hostname, container.pid, conmon.pid, persist/
 *   stateDir/exits/<id>         conmon exit file (the exit code)
 *   stateDir/logs/<id>.log      k8s-file log written by conmon
 *   stateDir/sockets/<id>       conmon attach socket directory
 *   secretsDir/<id>/            a tmpfs with the container's secret and config files (0, 1, …),
 *                               outside stateDir so that they never reach a disk
 */
import path from 'node:path';

export class RuntimePaths {
  readonly containersDir: string;
  readonly exitsDir: string;
  readonly logsDir: string;
  readonly socketsDir: string;

  /** `secretsDir` is undefined only for cleanup code that does not touch secret mounts. */
  constructor(
    readonly stateDir: string,
    readonly secretsDir?: string,
  ) {
    this.containersDir = path.join(stateDir, 'containers');
    this.exitsDir = path.join(stateDir, 'exits');
    this.logsDir = path.join(stateDir, 'logs');
    this.socketsDir = path.join(stateDir, 'sockets');
  }

  bundleDir(containerId: string): string {
    return path.join(this.containersDir, containerId);
  }

  inBundle(containerId: string, name: BundleFile): string {
    return path.join(this.bundleDir(containerId), name);
  }

  exitFile(containerId: string): string {
    return path.join(this.exitsDir, containerId);
  }

  logPath(containerId: string): string {
    return path.join(this.logsDir, `${containerId}.log`);
  }

  socketDir(containerId: string): string {
    return path.join(this.socketsDir, containerId);
  }

  /** The container's tmpfs of secret and config files. */
  filesDir(containerId: string): string {
    if (this.secretsDir === undefined) throw new Error('assertion failed: runtime paths without a secrets dir');
    return path.join(this.secretsDir, containerId);
  }
}

export type BundleFile =
  | 'config.json'
  | 'rootfs'
  | 'upper'
  | 'work'
  | 'layers'
  | 'meta.json'
  | 'hosts'
  | 'resolv.conf'
  | 'hostname'
  | 'container.pid'
  | 'conmon.pid'
  | 'conmon.stderr'
  | 'persist'
  /** The container's network namespace, bind-mounted before `runc create` (BridgeNetwork.createNamespace). */
  | 'netns';

/** runc's container id rule, plus our length bound. */
export const CONTAINER_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
