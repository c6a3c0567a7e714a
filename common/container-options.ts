/**
 * The rules for a container's isolation options, shared by the manager (which validates specs at
 * the API edge), the CLI (which parses flags) and the agent (which turns them into an OCI config
 * and must not trust a spec it did not check). Pure: no I/O.
 *
 * Each check returns a problem text (no field name: the caller knows the field) or a normalized
 * value, never throws.
 */
import path from 'node:path';

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

/** Every Linux capability, in kernel order (CAP_CHOWN = 0 ... CAP_CHECKPOINT_RESTORE = 40). */
export const LINUX_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Stands for every capability in cap_add / cap_drop. */
export const ALL_CAPABILITIES = 'ALL';

/** `net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN` -> `CAP_NET_ADMIN`; `all` -> `ALL`. */
export function normalizeCapability(name: string): Checked<string> {
  const upper = name.trim().toUpperCase();
  if (upper === ALL_CAPABILITIES) return { ok: true, value: ALL_CAPABILITIES };
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!LINUX_CAPABILITIES.includes(full)) return { ok: false, error: `unknown capability "${name}" (use a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL)` };
  return { ok: true, value: full };
}

/**
 * Docker's rule for the final set: ALL in cap_add means every capability but the dropped ones;
 * ALL in cap_drop means only the added ones; otherwise the defaults minus the dropped plus the
 * added (an added capability wins over the same one dropped). Inputs must be normalized.
 */
export function effectiveCapabilities(defaults: readonly string[], capAdd: readonly string[], capDrop: readonly string[]): string[] {
  let result: string[];
  if (capAdd.includes(ALL_CAPABILITIES)) result = LINUX_CAPABILITIES.filter((cap) => !capDrop.includes(cap));
  else if (capDrop.includes(ALL_CAPABILITIES)) result = [...capAdd];
  else result = [...defaults.filter((cap) => !capDrop.includes(cap)), ...capAdd];
  return [...new Set(result)];
}

/** The IPC sysctls Docker allows (namespaced by the IPC namespace). */
const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);
const SYSCTL_KEY = /^[a-z0-9_]+(?:[./][A-Za-z0-9_@:-]+)+$/;
const MAX_SYSCTL_VALUE_LENGTH = 4096;

/**
 * A problem with one sysctl, or undefined. Only sysctls the kernel namespaces for a container are
 * allowed (Docker's list): the IPC ones, fs.mqueue.* and net.* (every container has its own
 * network namespace).
 */
export function sysctlProblem(key: string, value: string): string | undefined {
  if (!SYSCTL_KEY.test(key) || key.split(/[./]/).some((part) => part === '..')) return `"${key}" is not a sysctl name`;
  if (!IPC_SYSCTLS.has(key) && !key.startsWith('fs.mqueue.') && !key.startsWith('net.')) {
    return `"${key}" is not a namespaced sysctl (allowed: ${[...IPC_SYSCTLS].join(', ')}, fs.mqueue.*, net.*)`;
  }
  if (value === '' || value.length > MAX_SYSCTL_VALUE_LENGTH || /[\n\0]/.test(value)) return `value of "${key}" must be non-empty, on one line`;
  return undefined;
}

/** Ulimit names (the RLIMIT_ suffix in lower case), with their line in /proc/<pid>/limits. */
export const ULIMIT_LIMITS_LINES: Readonly<Record<string, string>> = {
  core: 'Max core file size', cpu: 'Max cpu time', data: 'Max data size', fsize: 'Max file size', locks: 'Max file locks',
  memlock: 'Max locked memory', msgqueue: 'Max msgqueue size', nice: 'Max nice priority', nofile: 'Max open files',
  nproc: 'Max processes', rss: 'Max resident set', rtprio: 'Max realtime priority', rttime: 'Max realtime timeout',
  sigpending: 'Max pending signals', stack: 'Max stack size', as: 'Max address space',
};

/** -1 in a ulimit stands for unlimited (RLIM_INFINITY), as in Docker. */
export const UNLIMITED = -1;

/** A problem with one ulimit, or undefined. */
export function ulimitProblem(ulimit: { name: string; soft: number; hard: number }): string | undefined {
  if (!Object.hasOwn(ULIMIT_LIMITS_LINES, ulimit.name)) return `unknown ulimit "${ulimit.name}" (use one of ${Object.keys(ULIMIT_LIMITS_LINES).join(', ')})`;
  for (const [which, value] of [['soft', ulimit.soft], ['hard', ulimit.hard]] as const) {
    if (!Number.isSafeInteger(value) || value < UNLIMITED) return `${ulimit.name} ${which} limit ${value} must be a non-negative integer or -1 (unlimited)`;
  }
  if (rlimitGreater(ulimit.soft, ulimit.hard)) return `${ulimit.name} soft limit ${describeRlimit(ulimit.soft)} is above its hard limit ${describeRlimit(ulimit.hard)}`;
  return undefined;
}

/** a > b, where -1 is unlimited. */
export function rlimitGreater(a: number, b: number): boolean {
  if (a === UNLIMITED) return b !== UNLIMITED;
  return b !== UNLIMITED && a > b;
}

export function describeRlimit(value: number): string {
  return value === UNLIMITED ? 'unlimited' : String(value);
}

/** Linux signal numbers by name (without SIG). */
export const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13,
  ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25,
  VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};
const MAX_SIGNAL = 64;
const RTMIN = 34;

/**
 * `SIGINT`, `INT`, `sigint`, `2`, `SIGRTMIN+3` -> the signal in the form runc's `kill` takes
 * (`INT`, `37`). Empty is not a signal here: callers apply the SIGTERM default first.
 */
export function parseSignal(text: string): Checked<string> {
  const trimmed = text.trim();
  const bad: Checked<string> = { ok: false, error: `unknown signal "${text}" (use a name such as SIGTERM, SIGINT, SIGQUIT or a number from 1 to ${MAX_SIGNAL})` };
  if (/^\d+$/.test(trimmed)) {
    const number = Number(trimmed);
    return number >= 1 && number <= MAX_SIGNAL ? { ok: true, value: String(number) } : bad;
  }
  const name = trimmed.toUpperCase().replace(/^SIG/, '');
  const realtime = /^RTMIN(?:\+(\d+))?$/.exec(name) ?? /^RTMAX(?:-(\d+))?$/.exec(name);
  if (realtime !== null) {
    const offset = Number(realtime[1] ?? 0);
    const number = name.startsWith('RTMIN') ? RTMIN + offset : MAX_SIGNAL - offset;
    return number >= RTMIN && number <= MAX_SIGNAL ? { ok: true, value: String(number) } : bad;
  }
  return Object.hasOwn(SIGNAL_NUMBERS, name) ? { ok: true, value: name } : bad;
}

export type MountType = 'bind' | 'volume' | 'tmpfs';
export const MOUNT_TYPES: readonly MountType[] = ['bind', 'volume', 'tmpfs'];
/** Docker's volume name rule, with a length bound. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
/** Kernel filesystems nothing may be mounted into. */
const FORBIDDEN_MOUNT_ROOTS = ['/proc', '/sys'];
const MAX_MOUNT_PATH_LENGTH = 4096;
const MAX_TMPFS_MODE = 0o7777;

/** The shape of a mount in specs and requests (proto Mount, ContainerRequest mounts). */
export interface MountShape {
  type: string;
  source: string;
  target: string;
  readOnly: boolean;
  tmpfsSizeBytes: number;
  tmpfsMode: number;
}

/** A problem with one mount's fields, as "<field> ..." relative to the mount, or undefined. */
export function mountProblem(mount: MountShape): string | undefined {
  if (!(MOUNT_TYPES as readonly string[]).includes(mount.type)) return `type "${mount.type}" must be bind, volume or tmpfs`;
  const targetProblem = containerPathProblem(mount.target);
  if (targetProblem !== undefined) return `target "${mount.target}" ${targetProblem}`;
  if (normalizeContainerPath(mount.target) === '/') return 'target must not be / (use --read-only for the root filesystem)';
  const forbidden = FORBIDDEN_MOUNT_ROOTS.find((root) => isSameOrUnder(mount.target, root));
  if (forbidden !== undefined) return `target "${mount.target}" must not be in ${forbidden}`;
  if (mount.type !== 'tmpfs' && (mount.tmpfsSizeBytes !== 0 || mount.tmpfsMode !== 0)) return `tmpfs size and mode are for tmpfs mounts, not ${mount.type}`;
  switch (mount.type) {
    case 'bind': {
      if (mount.source === '') return 'source must be given for a bind mount (an absolute host path)';
      const sourceProblem = containerPathProblem(mount.source);
      return sourceProblem === undefined ? undefined : `source "${mount.source}" ${sourceProblem}`;
    }
    case 'volume':
      if (mount.source !== '' && !VOLUME_NAME.test(mount.source)) return `source "${mount.source}" is not a volume name (letters, digits, _ . -, starting with a letter or digit, at most 64)`;
      return undefined;
    case 'tmpfs':
      if (mount.source !== '') return 'source must be empty for a tmpfs mount';
      if (!Number.isSafeInteger(mount.tmpfsSizeBytes) || mount.tmpfsSizeBytes < 0) return 'tmpfs size must be a non-negative number of bytes (0 = the kernel default)';
      if (!Number.isInteger(mount.tmpfsMode) || mount.tmpfsMode < 0 || mount.tmpfsMode > MAX_TMPFS_MODE) return 'tmpfs mode must be an octal mode up to 07777 (0 = 01777)';
      return undefined;
    default:
      return `type "${mount.type}" must be bind, volume or tmpfs`;
  }
}

/**
 * A problem with the mounts as a set, naming the index of the later one, or undefined: no target
 * twice; no bind or volume mount at or around a secret or config file (its mount point would be
 * made inside the host directory), and no mount at a file's own path.
 */
export function mountSetProblem(mounts: readonly MountShape[], filePaths: readonly string[]): { index: number; error: string } | undefined {
  const seen = new Map<string, number>();
  for (const [index, mount] of mounts.entries()) {
    const target = normalizeContainerPath(mount.target);
    const earlier = seen.get(target);
    if (earlier !== undefined) return { index, error: `target ${target} is also the target of mount ${earlier}` };
    seen.set(target, index);
    for (const filePath of filePaths) {
      if (isSameOrUnder(target, filePath) || (mount.type !== 'tmpfs' && isSameOrUnder(filePath, target))) {
        return { index, error: `target ${target} collides with the secret or config file ${filePath}` };
      }
    }
  }
  return undefined;
}

/** Absolute, normalized, no NUL, bounded; undefined when fine. */
function containerPathProblem(value: string): string | undefined {
  if (value === '' || !value.startsWith('/')) return 'must be an absolute path';
  if (value.length > MAX_MOUNT_PATH_LENGTH) return `is longer than ${MAX_MOUNT_PATH_LENGTH} characters`;
  if (value.includes('\0')) return 'must not contain NUL';
  if (value.split('/').some((part) => part === '.' || part === '..')) return 'must not contain "." or ".." components';
  return undefined;
}

/** `/data/` and `/data//x` -> `/data`, `/data/x`. */
export function normalizeContainerPath(value: string): string {
  const normalized = path.posix.normalize(value);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

export function isSameOrUnder(inner: string, outer: string): boolean {
  const relative = path.posix.relative(outer, inner);
  return relative === '' || (!relative.startsWith('..') && !path.posix.isAbsolute(relative));
}
