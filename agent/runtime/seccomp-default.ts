/**
 * Docker's default seccomp profile as data, and the pure function that turns it into the OCI
 * `linux.seccomp` object for one container's capability set and architecture.
 *
 * Source: moby/moby `profiles/seccomp/default.json`. Keep the rules in the same order and with the
 * same conditions as upstream so a diff against a newer default.json stays readable; only the
 * layout is compacted (names per rule instead of one per line). Syscall names the host's
 * libseccomp does not know are skipped by runc (it logs and ignores them), so listing syscalls of
 * newer kernels or other architectures is harmless.
 */

/** One argument comparison of an OCI seccomp rule. */
export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: 'SCMP_CMP_EQ' | 'SCMP_CMP_NE' | 'SCMP_CMP_MASKED_EQ';
}

/** One OCI seccomp rule: these syscalls get this action (when the args match). */
export interface OciSeccompSyscall {
  names: string[];
  action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  errnoRet?: number;
  args?: OciSeccompArg[];
}

/** The OCI runtime spec's `linux.seccomp` object as Skiff writes it. */
export interface OciSeccomp {
  defaultAction: 'SCMP_ACT_ERRNO';
  defaultErrnoRet: number;
  architectures: string[];
  syscalls: OciSeccompSyscall[];
}

/** Conditions on a rule, as in Docker's profile; architectures use Go's GOARCH names. */
interface RuleCondition {
  caps?: readonly string[];
  arches?: readonly string[];
}

interface DefaultRule {
  names: readonly string[];
  action: OciSeccompSyscall['action'];
  errnoRet?: number;
  args?: readonly OciSeccompArg[];
  includes?: RuleCondition;
  excludes?: RuleCondition;
}

const EPERM = 1;
const ENOSYS = 38;
/** CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP: clone may create none of these. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/** Native architecture (GOARCH name) -> the seccomp architectures the filter covers. */
const ARCHITECTURES: Readonly<Record<string, readonly string[]>> = {
  amd64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
};

/** Node's `process.arch` -> Go's GOARCH, which Docker's profile uses for per-arch rules. */
const NODE_TO_GO_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', s390x: 's390x', riscv64: 'riscv64', ppc64: 'ppc64le',
};

/** The GOARCH name for a Node `process.arch` value; unknown values pass through unchanged. */
export function goArch(nodeArch: string): string {
  return NODE_TO_GO_ARCH[nodeArch] ?? nodeArch;
}

/** Always allowed: the bulk of Docker's allowlist. */
const ALWAYS_ALLOWED: readonly string[] = [
  'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'capget', 'capset', 'chdir', 'chmod', 'chown', 'chown32',
  'clock_adjtime', 'clock_adjtime64', 'clock_getres', 'clock_getres_time64', 'clock_gettime', 'clock_gettime64',
  'clock_nanosleep', 'clock_nanosleep_time64', 'close', 'close_range', 'connect', 'copy_file_range', 'creat', 'dup', 'dup2', 'dup3',
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'epoll_wait_old',
  'eventfd', 'eventfd2', 'execve', 'execveat', 'exit', 'exit_group', 'faccessat', 'faccessat2', 'fadvise64', 'fadvise64_64',
  'fallocate', 'fanotify_mark', 'fchdir', 'fchmod', 'fchmodat', 'fchown', 'fchown32', 'fchownat', 'fcntl', 'fcntl64', 'fdatasync',
  'fgetxattr', 'flistxattr', 'flock', 'fork', 'fremovexattr', 'fsetxattr', 'fstat', 'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64',
  'fsync', 'ftruncate', 'ftruncate64', 'futex', 'futex_time64', 'futex_waitv', 'futimesat', 'getcpu', 'getcwd', 'getdents', 'getdents64',
  'getegid', 'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups', 'getgroups32', 'getitimer', 'getpeername',
  'getpgid', 'getpgrp', 'getpid', 'getppid', 'getpriority', 'getrandom', 'getresgid', 'getresgid32', 'getresuid', 'getresuid32',
  'getrlimit', 'get_robust_list', 'getrusage', 'getsid', 'getsockname', 'getsockopt', 'get_thread_area', 'gettid', 'gettimeofday',
  'getuid', 'getuid32', 'getxattr', 'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch', 'io_cancel', 'ioctl',
  'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'ioprio_get', 'ioprio_set', 'io_setup', 'io_submit',
  'io_uring_enter', 'io_uring_register', 'io_uring_setup', 'ipc', 'kill', 'landlock_add_rule', 'landlock_create_ruleset',
  'landlock_restrict_self', 'lchown', 'lchown32', 'lgetxattr', 'link', 'linkat', 'listen', 'listxattr', 'llistxattr', '_llseek',
  'lremovexattr', 'lseek', 'lsetxattr', 'lstat', 'lstat64', 'madvise', 'membarrier', 'memfd_create', 'memfd_secret', 'mincore',
  'mkdir', 'mkdirat', 'mknod', 'mknodat', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2', 'mprotect', 'mq_getsetattr', 'mq_notify',
  'mq_open', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_timedsend', 'mq_timedsend_time64', 'mq_unlink', 'mremap', 'msgctl',
  'msgget', 'msgrcv', 'msgsnd', 'msync', 'munlock', 'munlockall', 'munmap', 'name_to_handle_at', 'nanosleep', 'newfstatat',
  '_newselect', 'open', 'openat', 'openat2', 'pause', 'pidfd_open', 'pidfd_send_signal', 'pipe', 'pipe2', 'pkey_alloc', 'pkey_free',
  'pkey_mprotect', 'poll', 'ppoll', 'ppoll_time64', 'prctl', 'pread64', 'preadv', 'preadv2', 'prlimit64', 'process_mrelease',
  'pselect6', 'pselect6_time64', 'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead', 'readlink', 'readlinkat', 'readv', 'recv',
  'recvfrom', 'recvmmsg', 'recvmmsg_time64', 'recvmsg', 'remap_file_pages', 'removexattr', 'rename', 'renameat', 'renameat2',
  'restart_syscall', 'rmdir', 'rseq', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn',
  'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo', 'sched_getaffinity', 'sched_getattr',
  'sched_getparam', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_getscheduler', 'sched_rr_get_interval',
  'sched_rr_get_interval_time64', 'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler', 'sched_yield',
  'seccomp', 'select', 'semctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'send', 'sendfile', 'sendfile64', 'sendmmsg',
  'sendmsg', 'sendto', 'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups', 'setgroups32',
  'setitimer', 'setpgid', 'setpriority', 'setregid', 'setregid32', 'setresgid', 'setresgid32', 'setresuid', 'setresuid32', 'setreuid',
  'setreuid32', 'setrlimit', 'set_robust_list', 'setsid', 'setsockopt', 'set_thread_area', 'set_tid_address', 'setuid', 'setuid32',
  'setxattr', 'shmat', 'shmctl', 'shmdt', 'shmget', 'shutdown', 'sigaltstack', 'signalfd', 'signalfd4', 'sigprocmask', 'sigreturn',
  'socketcall', 'socketpair', 'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statx', 'symlink', 'symlinkat', 'sync',
  'sync_file_range', 'syncfs', 'sysinfo', 'tee', 'tgkill', 'time', 'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime',
  'timer_gettime64', 'timer_settime', 'timer_settime64', 'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime',
  'timerfd_settime64', 'times', 'tkill', 'truncate', 'truncate64', 'ugetrlimit', 'umask', 'uname', 'unlink', 'unlinkat', 'utime',
  'utimensat', 'utimensat_time64', 'utimes', 'vfork', 'vmsplice', 'wait4', 'waitid', 'waitpid', 'write', 'writev',
];

const allow = (names: readonly string[], conditions: Omit<DefaultRule, 'names' | 'action'> = {}): DefaultRule => ({ names, action: 'SCMP_ACT_ALLOW', ...conditions });
const argument = (index: number, op: OciSeccompArg['op'], value: number): OciSeccompArg =>
  (op === 'SCMP_CMP_MASKED_EQ' ? { index, value, valueTwo: 0, op } : { index, value, op });
/** personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, query (0xffffffff). */
const PERSONALITIES: readonly number[] = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Docker's rules, in upstream order. */
export const DEFAULT_SECCOMP_RULES: readonly DefaultRule[] = [
  allow(ALWAYS_ALLOWED),
  // Upstream gates these on minKernel 4.8 (ptrace could bypass seccomp before); Skiff runs on
  // 6.x, so minKernel conditions are treated as always met.
  allow(['process_vm_readv', 'process_vm_writev', 'ptrace']),
  allow(['socket'], { args: [argument(0, 'SCMP_CMP_NE', 40)] }), // any family but AF_VSOCK
  ...PERSONALITIES.map((value) => allow(['personality'], { args: [argument(0, 'SCMP_CMP_EQ', value)] })),
  allow(['sync_file_range2', 'swapcontext'], { includes: { arches: ['ppc64le'] } }),
  allow(['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'], { includes: { arches: ['arm', 'arm64'] } }),
  allow(['arch_prctl'], { includes: { arches: ['amd64', 'x32'] } }),
  allow(['modify_ldt'], { includes: { arches: ['amd64', 'x32', 'x86'] } }),
  allow(['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'], { includes: { arches: ['s390', 's390x'] } }),
  allow(['riscv_flush_icache'], { includes: { arches: ['riscv64'] } }),
  allow(['open_by_handle_at'], { includes: { caps: ['CAP_DAC_READ_SEARCH'] } }),
  allow([
    'bpf', 'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie', 'mount', 'mount_setattr',
    'move_mount', 'open_tree', 'perf_event_open', 'quotactl', 'quotactl_fd', 'setdomainname', 'sethostname', 'setns', 'syslog',
    'umount', 'umount2', 'unshare',
  ], { includes: { caps: ['CAP_SYS_ADMIN'] } }),
  // Without CAP_SYS_ADMIN, clone may not create namespaces; s390 swaps clone's first two arguments.
  allow(['clone'], { args: [argument(0, 'SCMP_CMP_MASKED_EQ', CLONE_NAMESPACE_FLAGS)], excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] } }),
  allow(['clone'], { args: [argument(1, 'SCMP_CMP_MASKED_EQ', CLONE_NAMESPACE_FLAGS)], includes: { arches: ['s390', 's390x'] }, excludes: { caps: ['CAP_SYS_ADMIN'] } }),
  // clone3 passes its flags in a struct seccomp cannot inspect; ENOSYS makes libc fall back to clone.
  { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
  allow(['reboot'], { includes: { caps: ['CAP_SYS_BOOT'] } }),
  allow(['chroot'], { includes: { caps: ['CAP_SYS_CHROOT'] } }),
  allow(['delete_module', 'init_module', 'finit_module'], { includes: { caps: ['CAP_SYS_MODULE'] } }),
  allow(['acct'], { includes: { caps: ['CAP_SYS_PACCT'] } }),
  allow(['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'], { includes: { caps: ['CAP_SYS_PTRACE'] } }),
  allow(['iopl', 'ioperm'], { includes: { caps: ['CAP_SYS_RAWIO'] } }),
  allow(['settimeofday', 'stime', 'clock_settime', 'clock_settime64'], { includes: { caps: ['CAP_SYS_TIME'] } }),
  allow(['vhangup'], { includes: { caps: ['CAP_SYS_TTY_CONFIG'] } }),
  allow(['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'], { includes: { caps: ['CAP_SYS_NICE'] } }),
  allow(['syslog'], { includes: { caps: ['CAP_SYSLOG'] } }),
  allow(['bpf'], { includes: { caps: ['CAP_BPF'] } }),
  allow(['perf_event_open'], { includes: { caps: ['CAP_PERFMON'] } }),
];

/**
 * The OCI seccomp object for a container with exactly these capabilities on this architecture
 * (a GOARCH name: `amd64`, `arm64`, ...; see `goArch`). A rule is kept when all its
 * `includes.caps` are in the set and its `includes.arches` (if any) name the architecture, and
 * dropped when any `excludes.caps` is in the set or `excludes.arches` names the architecture.
 * Everything else fails with EPERM. Pure.
 */
export function seccompProfile(capabilities: readonly string[], arch: string): OciSeccomp {
  const granted = new Set(capabilities);
  const applies = (rule: DefaultRule): boolean => {
    const { includes, excludes } = rule;
    if (includes?.caps?.some((cap) => !granted.has(cap)) === true) return false;
    if (includes?.arches !== undefined && !includes.arches.includes(arch)) return false;
    if (excludes?.caps?.some((cap) => granted.has(cap)) === true) return false;
    if (excludes?.arches?.includes(arch) === true) return false;
    return true;
  };
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: [...(ARCHITECTURES[arch] ?? [])],
    syscalls: DEFAULT_SECCOMP_RULES.filter(applies).map(toOciRule),
  };
}

function toOciRule(rule: DefaultRule): OciSeccompSyscall {
  return {
    names: [...rule.names],
    action: rule.action,
    ...(rule.errnoRet !== undefined ? { errnoRet: rule.errnoRet } : {}),
    ...(rule.args !== undefined ? { args: rule.args.map((arg) => ({ ...arg })) } : {}),
  };
}
