import { describe, expect, it } from 'vitest';
import { buildOciSpec, cpuQuotaUs, DEFAULT_CAPABILITIES, DEFAULT_PIDS_LIMIT, MAX_NOFILE, parseNofileHardLimit, type OciSpecInput } from './oci-spec.js';
import { seccompProfile } from './seccomp-default.js';

function input(overrides: Partial<OciSpecInput> = {}): OciSpecInput {
  return {
    containerId: 'c1',
    hostname: 'web-1',
    argv: ['sh', '-c', 'echo hi'],
    env: ['FOO=bar'],
    workingDir: '',
    uid: 1000,
    gid: 1000,
    additionalGids: [2000],
    home: '/home/app',
    memoryLimitBytes: 0,
    nanoCpus: 0,
    pidsLimit: 0,
    cgroupParent: '/skiff-lab-ab12/h1',
    nofileHardLimit: 20_000,
    hostsPath: '/state/c1/hosts',
    resolvConfPath: '/state/c1/resolv.conf',
    hostnamePath: '/state/c1/hostname',
    fileMounts: [],
    ...overrides,
  };
}

describe('buildOciSpec', () => {
  it('oci spec has the five new namespaces and the cgroup path under the parent', () => {
    const spec = buildOciSpec(input());
    expect(spec.linux.namespaces.map((namespace) => namespace.type).sort()).toEqual(['ipc', 'mount', 'network', 'pid', 'uts']);
    expect(spec.linux.namespaces.every((namespace) => !('path' in namespace))).toBe(true);
    expect(spec.linux.cgroupsPath).toBe('/skiff-lab-ab12/h1/c1');
    expect(buildOciSpec(input({ cgroupParent: 'skiff' })).linux.cgroupsPath).toBe('/skiff/c1');
  });

  it('oci spec grants exactly Docker default capabilities with no_new_privs', () => {
    const { process: processSpec } = buildOciSpec(input());
    expect(DEFAULT_CAPABILITIES).toHaveLength(14);
    for (const set of [processSpec.capabilities.bounding, processSpec.capabilities.effective, processSpec.capabilities.permitted]) {
      expect([...set].sort()).toEqual([...DEFAULT_CAPABILITIES].sort());
    }
    expect(processSpec.capabilities.bounding).not.toContain('CAP_SYS_ADMIN');
    expect(processSpec.noNewPrivileges).toBe(true);
    expect(processSpec.terminal).toBe(false);
  });

  it('oci spec carries Docker default seccomp profile for its capabilities', () => {
    const { seccomp } = buildOciSpec(input({ arch: 'amd64' })).linux;
    expect(seccomp).toEqual(seccompProfile(DEFAULT_CAPABILITIES, 'amd64'));
    expect(seccomp.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(seccomp.syscalls.flatMap((rule) => rule.names)).not.toContain('mount');
    expect(buildOciSpec(input()).linux.seccomp.syscalls.length).toBeGreaterThan(0);
  });

  it('oci spec maps limits to cgroup resources and defaults pids', () => {
    const limited = buildOciSpec(input({ memoryLimitBytes: 64 << 20, nanoCpus: 1_500_000_000, pidsLimit: 50 })).linux.resources;
    expect(limited.memory).toEqual({ limit: 64 << 20 });
    expect(limited.cpu).toEqual({ quota: 150_000, period: 100_000 });
    expect(limited.pids).toEqual({ limit: 50 });
    const unlimited = buildOciSpec(input()).linux.resources;
    expect(unlimited.memory).toBeUndefined();
    expect(unlimited.cpu).toBeUndefined();
    expect(unlimited.pids).toEqual({ limit: DEFAULT_PIDS_LIMIT });
    expect(cpuQuotaUs(1)).toBe(1_000);
  });

  it('oci spec never sets RLIMIT_NOFILE above the hard limit', () => {
    expect(buildOciSpec(input({ nofileHardLimit: 20_000 })).process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', hard: 20_000, soft: 20_000 }]);
    expect(buildOciSpec(input({ nofileHardLimit: Number.POSITIVE_INFINITY })).process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', hard: MAX_NOFILE, soft: MAX_NOFILE }]);
    expect(buildOciSpec(input({ nofileHardLimit: 4_000_000 })).process.rlimits[0]?.hard).toBe(MAX_NOFILE);
  });

  it('oci spec carries user, env defaults, cwd, masked paths and the bundle file mounts', () => {
    const spec = buildOciSpec(input());
    expect(spec.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [2000] });
    expect(spec.process.env).toEqual([expect.stringMatching(/^PATH=/), 'FOO=bar', 'HOSTNAME=web-1', 'HOME=/home/app']);
    expect(buildOciSpec(input({ env: ['PATH=/x', 'HOME=/h'] })).process.env).toEqual(['PATH=/x', 'HOME=/h', 'HOSTNAME=web-1']);
    expect(spec.process.cwd).toBe('/');
    expect(spec.linux.maskedPaths).toContain('/proc/kcore');
    expect(spec.linux.readonlyPaths).toContain('/proc/sys');
    expect(spec.mounts.find((mount) => mount.destination === '/sys')?.options).toContain('ro');
    expect(spec.mounts.find((mount) => mount.destination === '/sys/fs/cgroup')?.options).toContain('ro');
    expect(spec.mounts.find((mount) => mount.destination === '/etc/hosts')).toMatchObject({ type: 'bind', source: '/state/c1/hosts' });
    expect(spec.mounts.map((mount) => mount.destination)).toEqual(expect.arrayContaining(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/etc/resolv.conf', '/etc/hostname']));
    expect(spec.hostname).toBe('web-1');
    expect(spec.root).toEqual({ path: 'rootfs', readonly: false });
  });

  it('oci spec bind-mounts secret and config files read-only, after every other mount', () => {
    const spec = buildOciSpec(input({ fileMounts: [{ containerPath: '/run/secrets/db', hostPath: '/run/skiff/secrets/c1/0' }, { containerPath: '/etc/app.conf', hostPath: '/run/skiff/secrets/c1/1' }] }));
    expect(spec.mounts.slice(-2)).toEqual([
      { destination: '/run/secrets/db', type: 'bind', source: '/run/skiff/secrets/c1/0', options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev'] },
      { destination: '/etc/app.conf', type: 'bind', source: '/run/skiff/secrets/c1/1', options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev'] },
    ]);
  });
});

describe('parseNofileHardLimit', () => {
  const limits = (hard: string): string =>
    `Limit                     Soft Limit           Hard Limit           Units     \nMax processes             96365                96365                processes \nMax open files            1024                 ${hard}                files     \n`;

  it('nofile hard limit is read from /proc limits text', () => {
    expect(parseNofileHardLimit(limits('20000'))).toBe(20_000);
    expect(parseNofileHardLimit(limits('unlimited'))).toBe(Number.POSITIVE_INFINITY);
    expect(() => parseNofileHardLimit('Max processes 1 1\n')).toThrow(/cannot read the open-files hard limit/);
  });
});
