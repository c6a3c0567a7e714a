/**
 * The container runtime's public face: one runc container per task attempt, in its own
 * pid/net/ipc/uts/mount namespaces, with memory/CPU/pids cgroups under this host's cgroup
 * parent, stdio held by a container monitor (conmon) so that the agent can restart without
 * touching running containers.
 */

export interface ContainerRequest {
  /** runc container id: [a-z0-9][a-z0-9_-]*, at most 64 characters, unique per task attempt. */
  containerId: string;
  hostname: string;
  /** Image layer directories, base first (from ImageStore.pull). */
  layerDirs: string[];
  /** Final argv (entrypoint/cmd already merged by the caller). Must be non-empty. */
  argv: string[];
  /** KEY=VALUE, already merged with the image's env. */
  env: string[];
  /** `uid[:gid]` or a name resolved against the rootfs /etc/passwd; empty = root. */
  user: string;
  /** Absolute path; empty = `/`. */
  workingDir: string;
  /** 0 = no limit. */
  memoryLimitBytes: number;
  /** 1e9 = one core; 0 = no limit. */
  nanoCpus: number;
  /** 0 = runtime default. */
  pidsLimit: number;
  /** Stored beside the container and returned by list(), e.g. `skiff.task.id`. */
  labels: Record<string, string>;
  /**
   * Secret and config files: put in a tmpfs of this container's own (never on disk) and
   * bind-mounted read-only at their paths. Never stored, logged or returned by the runtime.
   */
  files: ContainerFile[];
  /** Root filesystem read-only (/etc/hosts, resolv.conf, hostname, /dev/shm and mounts stay writable). Default false. */
  readOnlyRootfs?: boolean;
  /** Added to / dropped from Docker's default set: `NET_ADMIN`, `CAP_NET_ADMIN` or `ALL`. */
  capAdd?: string[];
  capDrop?: string[];
  /** Namespaced sysctls only (see common/container-options.ts). */
  sysctls?: Record<string, string>;
  /** Process rlimits (-1 = unlimited); never above the agent's own hard limits. */
  ulimits?: ContainerUlimit[];
  /** Run the node's static tini as PID 1 (`/sbin/skiff-init -- argv...`). */
  init?: boolean;
  /** Bind, volume and tmpfs mounts, in any order (mounted parents first). */
  mounts?: ContainerMount[];
  /** Overlay networks to join besides the host bridge (eth1, eth2, … in this order). */
  networks?: ContainerNetwork[];
}

/** One ulimit of a ContainerRequest: `name` is the RLIMIT_ suffix in lower case (nofile, nproc, ...). */
export interface ContainerUlimit {
  name: string;
  soft: number;
  hard: number;
}

/**
 * One mount of a ContainerRequest. bind: `source` is an existing absolute host path. volume:
 * `source` names a volume kept under the state dir across containers and agent restarts (made on
 * first use, filled from the image's content at the target); empty = an anonymous volume removed
 * with the container. tmpfs: `source` is empty.
 */
export interface ContainerMount {
  type: 'bind' | 'volume' | 'tmpfs';
  source: string;
  target: string;
  readOnly: boolean;
  /** tmpfs only; 0 = the kernel default (half of RAM). */
  tmpfsSizeBytes: number;
  /** tmpfs only; 0 = 01777. */
  tmpfsMode: number;
}

/** One overlay network of a container: the address the manager's allocator gave its task. */
export interface ContainerNetwork {
  networkId: string;
  /** CIDR form, e.g. `10.0.1.7/24`. */
  address: string;
}

/** Joins containers to overlay networks (agent/network/overlay); absent: no overlay networks. */
export interface OverlayAttacher {
  /** Waits for the networks' views; `internal` when every one is internal (no way out for the container). */
  prepare(containerId: string, networks: readonly ContainerNetwork[]): Promise<{ internal: boolean }>;
  /** Plugs the container whose init is `pid` into each network (its host-bridge address names it to the DNS resolver). */
  attach(containerId: string, pid: number, bridgeAddress: string, networks: readonly ContainerNetwork[]): Promise<void>;
  /** Unplugs the container and removes devices no longer needed. Idempotent. */
  detach(containerId: string): Promise<void>;
}

/** One file of a ContainerRequest's `files`. */
export interface ContainerFile {
  /** Absolute, normalized path inside the container, e.g. `/run/secrets/db-password`. */
  containerPath: string;
  data: Uint8Array;
  uid: number;
  gid: number;
  /** Permission bits, e.g. 0o444. */
  mode: number;
}

export type ContainerStatus = 'created' | 'running' | 'stopped';

export interface ContainerInfo {
  containerId: string;
  labels: Record<string, string>;
  status: ContainerStatus;
  /** Host pid of the container's init; 0 once stopped. */
  pid: number;
  /** Set once stopped: the exit code (128+signal for a signal). */
  exitCode?: number;
  /** True when the kernel OOM killer ended the container. */
  oomKilled?: boolean;
  /** Addresses on the host bridge (no prefix length), e.g. ["198.18.129.2"]. */
  addresses: string[];
  startedAtMs: number;
  /** Path of the container's log file (k8s-file format written by the monitor). */
  logPath: string;
}

export type RuntimeErrorCode =
  | 'invalid_request'
  | 'already_exists'
  | 'not_found'
  | 'start_failed'
  | 'network_failed';

export class RuntimeError extends Error {
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}

export interface RuntimeOptions {
  /** Per-host state: bundles, monitor files, exit files, logs, network state. */
  stateDir: string;
  /** `runc --root` for this host. */
  runcRoot: string;
  /** cgroup parent path for this host's containers, e.g. `/skiff-lab-ab12/h1` or `/skiff`. */
  cgroupParent: string;
  /** Host bridge that container veths attach to, e.g. `skiff0`. */
  bridgeName: string;
  /** Subnet of that bridge, e.g. `198.18.129.0/24`; the bridge takes the first address. */
  bridgeSubnet: string;
  /**
   * A directory outside stateDir (e.g. under /run): the runtime mounts a fresh tmpfs per
   * container at `<secretsDir>/<id>` for its secret and config files, so they never touch a disk.
   */
  secretsDir: string;
  /** Static tini bind-mounted for `init` requests; default /usr/bin/tini-static (Debian's tini). */
  initPath?: string;
}

/** A process to start inside a running container (`runc exec`). */
export interface ExecOptions {
  /** Non-empty argv; argv[0] is looked up in the container's PATH. */
  argv: string[];
  /** KEY=VALUE added to the container's environment. */
  env: string[];
  /** Empty = the container's user. */
  user: string;
  /** Empty = the container's working directory. */
  workingDir: string;
  /** True: `stdin` is a writable stream to the process; false: its stdin is /dev/null. */
  stdin: boolean;
}

/** A process started by Runtime.exec. */
export interface ExecProcess {
  stdout: NodeJS.ReadableStream;
  stderr: NodeJS.ReadableStream;
  /** Undefined unless ExecOptions.stdin was true. */
  stdin: NodeJS.WritableStream | undefined;
  /** Resolves with the exit code (128+signal when killed) once the process and its output are done. */
  exited: Promise<number>;
  /** Signals the process (default SIGKILL). */
  kill(signal?: NodeJS.Signals): void;
}

export type ExitListener = (containerId: string, exitCode: number, oomKilled: boolean) => void;

export interface Runtime {
  /** Creates, networks and starts a container; on any failure cleans up and throws RuntimeError. */
  run(request: ContainerRequest): Promise<ContainerInfo>;
  /** Every container of this host that the runtime knows, running or stopped (used to adopt after a restart). */
  list(): Promise<ContainerInfo[]>;
  inspect(containerId: string): Promise<ContainerInfo | undefined>;
  /** Starts a process in a running container; RuntimeError `not_found` when it is not running. */
  exec(containerId: string, options: ExecOptions): Promise<ExecProcess>;
  /**
   * `signal` (default SIGTERM; a name such as SIGINT or INT, or a number), then SIGKILL after
   * timeoutMs. Resolves once stopped. No-op when already stopped. A bad signal: RuntimeError
   * `invalid_request`.
   */
  stop(containerId: string, timeoutMs: number, signal?: string): Promise<void>;
  /** Stops if needed, releases the network address, unmounts the rootfs, deletes bundle and runc state. Idempotent. */
  remove(containerId: string): Promise<void>;
  /** Calls listener once per container exit observed from now on (including exits that happened while no agent ran, on the first list()). */
  watchExits(listener: ExitListener): () => void;
  /** Releases watchers; leaves containers running. */
  close(): Promise<void>;
}
