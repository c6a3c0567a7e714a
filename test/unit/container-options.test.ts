import { describe, expect, it } from 'vitest';
import {
  effectiveCapabilities, LINUX_CAPABILITIES, mountProblem, mountSetProblem, normalizeCapability, parseSignal, sysctlProblem, ulimitProblem, type MountShape,
} from '../../common/container-options.js';

const mount = (overrides: Partial<MountShape>): MountShape => ({ type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0, ...overrides });

describe('container options', () => {
  it('capabilities normalize with or without CAP_ and in any case; unknown ones are named', () => {
    expect(LINUX_CAPABILITIES).toHaveLength(41);
    expect(normalizeCapability('net_admin')).toEqual({ ok: true, value: 'CAP_NET_ADMIN' });
    expect(normalizeCapability('CAP_SYS_PTRACE')).toEqual({ ok: true, value: 'CAP_SYS_PTRACE' });
    expect(normalizeCapability('all')).toEqual({ ok: true, value: 'ALL' });
    expect(normalizeCapability('NET_ADMINS')).toEqual({ ok: false, error: expect.stringContaining('unknown capability "NET_ADMINS"') });
  });

  it('effective capabilities follow Docker: ALL add, ALL drop, add wins over drop', () => {
    const defaults = ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_RAW'];
    expect(effectiveCapabilities(defaults, [], ['CAP_NET_RAW'])).toEqual(['CAP_CHOWN', 'CAP_KILL']);
    expect(effectiveCapabilities(defaults, ['CAP_NET_ADMIN'], [])).toEqual(['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_RAW', 'CAP_NET_ADMIN']);
    expect(effectiveCapabilities(defaults, ['CAP_KILL'], ['ALL'])).toEqual(['CAP_KILL']);
    expect(effectiveCapabilities(defaults, ['ALL'], ['CAP_SYS_ADMIN'])).toHaveLength(40);
    expect(effectiveCapabilities(defaults, ['CAP_KILL'], ['CAP_KILL'])).toContain('CAP_KILL');
  });

  it('sysctls are limited to the namespaced ones Docker allows', () => {
    expect(sysctlProblem('net.ipv4.ip_unprivileged_port_start', '0')).toBeUndefined();
    expect(sysctlProblem('net.ipv4.conf.eth0/100.rp_filter', '1')).toBeUndefined();
    expect(sysctlProblem('kernel.shmmax', '1024')).toBeUndefined();
    expect(sysctlProblem('fs.mqueue.msg_max', '20')).toBeUndefined();
    expect(sysctlProblem('kernel.hostname', 'x')).toContain('"kernel.hostname" is not a namespaced sysctl');
    expect(sysctlProblem('vm.swappiness', '1')).toContain('not a namespaced sysctl');
    expect(sysctlProblem('net', '1')).toContain('is not a sysctl name');
    expect(sysctlProblem('net.core.somaxconn', '')).toContain('must be non-empty');
    expect(sysctlProblem('net.core.somaxconn', 'a\nb')).toContain('on one line');
  });

  it('ulimits need a known name, soft at most hard, -1 for unlimited', () => {
    expect(ulimitProblem({ name: 'nofile', soft: 1024, hard: 2048 })).toBeUndefined();
    expect(ulimitProblem({ name: 'memlock', soft: -1, hard: -1 })).toBeUndefined();
    expect(ulimitProblem({ name: 'core', soft: 0, hard: -1 })).toBeUndefined();
    expect(ulimitProblem({ name: 'files', soft: 1, hard: 1 })).toContain('unknown ulimit "files"');
    expect(ulimitProblem({ name: 'nofile', soft: 4096, hard: 1024 })).toBe('nofile soft limit 4096 is above its hard limit 1024');
    expect(ulimitProblem({ name: 'nofile', soft: -1, hard: 1024 })).toBe('nofile soft limit unlimited is above its hard limit 1024');
    expect(ulimitProblem({ name: 'nproc', soft: -5, hard: 10 })).toContain('must be a non-negative integer or -1');
  });

  it('signals parse from names with or without SIG, numbers and real-time names', () => {
    expect(parseSignal('SIGTERM')).toEqual({ ok: true, value: 'TERM' });
    expect(parseSignal('int')).toEqual({ ok: true, value: 'INT' });
    expect(parseSignal('SIGQUIT')).toEqual({ ok: true, value: 'QUIT' });
    expect(parseSignal('9')).toEqual({ ok: true, value: '9' });
    expect(parseSignal('SIGRTMIN+3')).toEqual({ ok: true, value: '37' });
    expect(parseSignal('SIGRTMAX')).toEqual({ ok: true, value: '64' });
    for (const bad of ['SIGFOO', '0', '65', '', 'RTMIN+40']) expect(parseSignal(bad)).toMatchObject({ ok: false, error: expect.stringContaining('unknown signal') });
  });

  it('mounts: type, absolute targets, no /, /proc or /sys, bind sources, volume names, tmpfs-only fields', () => {
    expect(mountProblem(mount({}))).toBeUndefined();
    expect(mountProblem(mount({ source: '' }))).toBeUndefined(); // anonymous volume
    expect(mountProblem(mount({ type: 'bind', source: '/srv/www', target: '/usr/share/www', readOnly: true }))).toBeUndefined();
    expect(mountProblem(mount({ type: 'tmpfs', source: '', tmpfsSizeBytes: 1 << 20, tmpfsMode: 0o700 }))).toBeUndefined();
    expect(mountProblem(mount({ type: 'nfs' }))).toBe('type "nfs" must be bind, volume or tmpfs');
    expect(mountProblem(mount({ target: 'data' }))).toBe('target "data" must be an absolute path');
    expect(mountProblem(mount({ target: '/' }))).toContain('target must not be /');
    expect(mountProblem(mount({ target: '/a/../b' }))).toContain('must not contain "." or ".."');
    expect(mountProblem(mount({ target: '/proc/sys' }))).toBe('target "/proc/sys" must not be in /proc');
    expect(mountProblem(mount({ type: 'bind', source: '' }))).toContain('source must be given for a bind mount');
    expect(mountProblem(mount({ type: 'bind', source: 'relative' }))).toBe('source "relative" must be an absolute path');
    expect(mountProblem(mount({ source: 'bad/name' }))).toContain('is not a volume name');
    expect(mountProblem(mount({ tmpfsSizeBytes: 10 }))).toBe('tmpfs size and mode are for tmpfs mounts, not volume');
    expect(mountProblem(mount({ type: 'tmpfs', source: 'x' }))).toBe('source must be empty for a tmpfs mount');
    expect(mountProblem(mount({ type: 'tmpfs', source: '', tmpfsMode: 0o17777 }))).toContain('tmpfs mode');
  });

  it('mount sets: no target twice, no bind or volume around or at a secret path', () => {
    expect(mountSetProblem([mount({}), mount({ target: '/data/' })], [])).toEqual({ index: 1, error: 'target /data is also the target of mount 0' });
    expect(mountSetProblem([mount({ target: '/run' })], ['/run/secrets/db'])).toEqual({ index: 0, error: 'target /run collides with the secret or config file /run/secrets/db' });
    expect(mountSetProblem([mount({ type: 'tmpfs', source: '', target: '/run' })], ['/run/secrets/db'])).toBeUndefined();
    expect(mountSetProblem([mount({ type: 'tmpfs', source: '', target: '/etc/app.conf' })], ['/etc/app.conf'])).toMatchObject({ index: 0 });
    expect(mountSetProblem([mount({ target: '/data' }), mount({ type: 'tmpfs', source: '', target: '/data/cache' })], [])).toBeUndefined();
  });
});
