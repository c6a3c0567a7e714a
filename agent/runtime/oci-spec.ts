/**
 * Builds a container's OCI runtime config (config.json) from a validated request. Pure: the
 * caller supplies resolved ids, the nofile hard limit and the bundle file paths. Defaults follow
 * Docker's (capabilities, masked and read-only paths, standard mounts).
 */
import path from 'node:path';
import { INIT_CONTAINER_PATH, ociRlimits, type OciRlimit } from './isolation.js';
import { goArch, seccompProfile, type OciSeccomp } from './seccomp-default.js';

export const OCI_VERSION = '1.0.2';
/** CFS period for nanoCpus; Docker's value. */
export const CPU_PERIOD_US = 100_000;
/** Smallest CFS quota the kernel accepts. */
export const MIN_CPU_QUOTA_US = 1_000;
/** pids.max when the request says 0. */
export const DEFAULT_PIDS_LIMIT = 4096;
/** Upper bound for RLIMIT_NOFILE; it is further clamped to the agent's own hard limit. */
export const MAX_NOFILE = 1_048_576;
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default capability set. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export const MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** The subset of the OCI runtime spec that Skiff writes. */
export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[] };
    rlimits: OciRlimit[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: {
    namespaces: Array<{ type: string; path?: string }>;
    cgroupsPath: string;
    resources: {
      devices: Array<{ allow: boolean; access: string }>;
      memory?: { limit: number };
      cpu?: { quota: number; period: number };
      pids: { limit: number };
    };
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp: OciSeccomp;
    sysctl?: Record<string, string>;
  };
  annotations: Record<string, string>;
}

export interface OciSpecInput {
  containerId: string;
  hostname: string;
  argv: string[];
  env: string[];
  /** Absolute; empty = `/`. */
  workingDir: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  /** Used for HOME when env has none. */
  home: string;
  memoryLimitBytes: number;
  nanoCpus: number;
  pidsLimit: number;
  cgroupParent: string;
  /** The agent's own RLIMIT_NOFILE hard limit; the container never gets more. */
  nofileHardLimit: number;
  /** Host paths of the files bind-mounted over /etc/hosts, /etc/resolv.conf, /etc/hostname. */
  hostsPath: string;
  resolvConfPath: string;
  hostnamePath: string;
  /** Secret and config files on the container's tmpfs, bind-mounted read-only last. */
  fileMounts: ReadonlyArray<{ containerPath: string; hostPath: string }>;
  /** GOARCH name (`amd64`, `arm64`) the seccomp filter is built for; defaults to this host's. */
  arch?: string;
  /** The final capability set (see isolation.ts); default Docker's. */
  capabilities?: readonly string[];
  /** Checked ulimits; RLIMIT_NOFILE defaults to the clamped nofileHardLimit. */
  ulimits?: ReadonlyArray<{ name: string; soft: number; hard: number }>;
  sysctls?: Readonly<Record<string, string>>;
  readOnlyRootfs?: boolean;
  /** Host path of a static tini: bind-mounted read-only at INIT_CONTAINER_PATH, which runs argv. */
  initPath?: string;
  /** The request's bind, volume and tmpfs mounts, ready and ordered (mounts.ts). */
  userMounts?: readonly OciMount[];
  /** A network namespace made beforehand (a bind-mounted nsfs file) for the container to join; absent: a new one. */
  netnsPath?: string;
}

/** The config.json object for one container; the rootfs is `rootfs` beside config.json. */
export function buildOciSpec(input: OciSpecInput): OciSpec {
  const capabilities = [...(input.capabilities ?? DEFAULT_CAPABILITIES)];
  const nofile = Math.max(0, Math.min(MAX_NOFILE, input.nofileHardLimit));
  const resources: OciSpec['linux']['resources'] = {
    devices: [{ allow: false, access: 'rwm' }],
    pids: { limit: input.pidsLimit > 0 ? input.pidsLimit : DEFAULT_PIDS_LIMIT },
  };
  if (input.memoryLimitBytes > 0) resources.memory = { limit: input.memoryLimitBytes };
  if (input.nanoCpus > 0) resources.cpu = { quota: cpuQuotaUs(input.nanoCpus), period: CPU_PERIOD_US };
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: input.uid, gid: input.gid, ...(input.additionalGids.length > 0 ? { additionalGids: input.additionalGids } : {}) },
      args: input.initPath === undefined ? [...input.argv] : [INIT_CONTAINER_PATH, '--', ...input.argv],
      env: containerEnv(input.env, input.hostname, input.home),
      cwd: input.workingDir === '' ? '/' : input.workingDir,
      capabilities: { bounding: capabilities, effective: [...capabilities], permitted: [...capabilities] },
      rlimits: ociRlimits(input.ulimits ?? [], nofile),
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: input.readOnlyRootfs === true },
    hostname: input.hostname,
    mounts: [...standardMounts(), ...(input.userMounts ?? []), ...initMounts(input), ...bundleFileMounts(input), ...secretFileMounts(input)],
    linux: {
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount'].map((type) => (type === 'network' && input.netnsPath !== undefined ? { type, path: input.netnsPath } : { type })),
      cgroupsPath: path.posix.join('/', input.cgroupParent, input.containerId),
      resources,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      // Docker's default profile, derived from the same capability list the process gets so the
      // syscalls a capability needs (mount for CAP_SYS_ADMIN, ...) come and go together with it.
      seccomp: seccompProfile(capabilities, input.arch ?? goArch(process.arch)),
      ...(input.sysctls !== undefined && Object.keys(input.sysctls).length > 0 ? { sysctl: { ...input.sysctls } } : {}),
    },
    annotations: { 'skiff.container.id': input.containerId },
  };
}

/** CFS quota for nanoCpus at CPU_PERIOD_US, never below the kernel minimum. */
export function cpuQuotaUs(nanoCpus: number): number {
  return Math.max(MIN_CPU_QUOTA_US, Math.round((nanoCpus * CPU_PERIOD_US) / 1e9));
}

/** Parses the "Max open files" hard limit from /proc/<pid>/limits text; Infinity for unlimited. */
export function parseNofileHardLimit(limitsText: string): number {
  const line = limitsText.split('\n').find((candidate) => candidate.startsWith('Max open files'));
  const fields = line?.slice('Max open files'.length).trim().split(/\s+/) ?? [];
  const hard = fields[1];
  if (hard === 'unlimited') return Number.POSITIVE_INFINITY;
  const value = Number(hard);
  if (hard === undefined || !Number.isInteger(value) || value <= 0) {
    throw new Error(`cannot read the open-files hard limit: unexpected /proc/self/limits line ${JSON.stringify(line ?? '')}`);
  }
  return value;
}

function containerEnv(env: readonly string[], hostname: string, home: string): string[] {
  const result = [...env];
  const has = (key: string): boolean => result.some((entry) => entry.startsWith(`${key}=`));
  if (!has('PATH')) result.unshift(`PATH=${DEFAULT_PATH}`);
  if (!has('HOSTNAME')) result.push(`HOSTNAME=${hostname}`);
  if (!has('HOME')) result.push(`HOME=${home}`);
  return result;
}

function standardMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
}

function bundleFileMounts(input: OciSpecInput): OciMount[] {
  const bind = (destination: string, source: string): OciMount => ({ destination, type: 'bind', source, options: ['rbind', 'rprivate', 'rw'] });
  return [bind('/etc/hosts', input.hostsPath), bind('/etc/resolv.conf', input.resolvConfPath), bind('/etc/hostname', input.hostnamePath)];
}

function initMounts(input: OciSpecInput): OciMount[] {
  if (input.initPath === undefined) return [];
  return [{ destination: INIT_CONTAINER_PATH, type: 'bind', source: input.initPath, options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev'] }];
}

function secretFileMounts(input: OciSpecInput): OciMount[] {
  return input.fileMounts.map(({ containerPath, hostPath }) => ({ destination: containerPath, type: 'bind', source: hostPath, options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev'] }));
}
