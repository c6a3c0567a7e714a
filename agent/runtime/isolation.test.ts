import { describe, expect, it } from 'vitest';
import { requestProblem } from './bundle.js';
import { INIT_CONTAINER_PATH, ociRlimits, parseHardLimits, requestCapabilities, serializeOciConfig } from './isolation.js';
import { buildOciSpec, DEFAULT_CAPABILITIES, type OciSpecInput } from './oci-spec.js';
import { seccompProfile } from './seccomp-default.js';
import type { ContainerRequest } from './types.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max stack size            8388608              unlimited            bytes
Max core file size        0                    unlimited            bytes
Max processes             96365                96365                processes
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

function request(overrides: Partial<ContainerRequest> = {}): ContainerRequest {
  return {
    containerId: 'c1', hostname: 'web-1', layerDirs: ['/layers/a'], argv: ['sh'], env: [], user: '', workingDir: '',
    memoryLimitBytes: 0, nanoCpus: 0, pidsLimit: 0, labels: {}, files: [], ...overrides,
  };
}

function specInput(overrides: Partial<OciSpecInput> = {}): OciSpecInput {
  return {
    containerId: 'c1', hostname: 'web-1', argv: ['httpd', '-f'], env: [], workingDir: '', uid: 0, gid: 0, additionalGids: [], home: '/root',
    memoryLimitBytes: 0, nanoCpus: 0, pidsLimit: 0, cgroupParent: '/skiff', nofileHardLimit: 20_000,
    hostsPath: '/b/hosts', resolvConfPath: '/b/resolv.conf', hostnamePath: '/b/hostname', fileMounts: [], arch: 'amd64', ...overrides,
  };
}

describe('isolation', () => {
  it('hard limits are read for every ulimit name in /proc/self/limits', () => {
    expect(parseHardLimits(LIMITS)).toEqual({ cpu: Infinity, stack: Infinity, core: Infinity, nproc: 96365, nofile: 20000, memlock: 8388608 });
  });

  it('a request is refused with the field named: capability, sysctl, ulimit above the host hard limit, mount', () => {
    const hard = parseHardLimits(LIMITS);
    const problem = (overrides: Partial<ContainerRequest>): string | undefined => requestProblem(request(overrides), hard);
    expect(problem({ capAdd: ['NET_ADMIN'], capDrop: ['all'], sysctls: { 'net.ipv4.ping_group_range': '0 0' }, ulimits: [{ name: 'nofile', soft: 100, hard: 20000 }] })).toBeUndefined();
    expect(problem({ capAdd: ['NET_ADMINZ'] })).toContain('cannot run container "c1": capAdd: unknown capability "NET_ADMINZ"');
    expect(problem({ sysctls: { 'kernel.domainname': 'x' } })).toContain('sysctls: "kernel.domainname" is not a namespaced sysctl');
    expect(problem({ ulimits: [{ name: 'nofile', soft: 100, hard: 30000 }] })).toBe(
      'cannot run container "c1": ulimits: nofile hard limit 30000 is above this node\'s hard limit 20000 (the agent cannot raise it)',
    );
    expect(problem({ ulimits: [{ name: 'memlock', soft: -1, hard: -1 }] })).toContain("memlock hard limit unlimited is above this node's hard limit 8388608");
    expect(problem({ ulimits: [{ name: 'core', soft: -1, hard: -1 }] })).toBeUndefined();
    expect(problem({ ulimits: [{ name: 'core', soft: 0, hard: 0 }, { name: 'core', soft: 0, hard: 0 }] })).toContain('ulimits: core is given twice');
    expect(problem({ mounts: [{ type: 'tmpfs', source: '', target: 'tmp', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 }] })).toContain('mounts[0]: target "tmp" must be an absolute path');
    const secret = { containerPath: '/run/secrets/db', data: new Uint8Array(), uid: 0, gid: 0, mode: 0o444 };
    expect(problem({ files: [secret], mounts: [{ type: 'volume', source: 'x', target: '/run', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 }] })).toContain(
      'mounts[0]: target /run collides with the secret or config file /run/secrets/db',
    );
  });

  it('capabilities: drops and adds change both the sets and the seccomp profile', () => {
    const capabilities = requestCapabilities(DEFAULT_CAPABILITIES, request({ capAdd: ['sys_ptrace'], capDrop: ['NET_RAW', 'CAP_CHOWN'] }));
    expect(capabilities).toContain('CAP_SYS_PTRACE');
    expect(capabilities).not.toContain('CAP_NET_RAW');
    expect(capabilities).not.toContain('CAP_CHOWN');
    const spec = buildOciSpec(specInput({ capabilities }));
    expect(spec.process.capabilities.bounding).toEqual(capabilities);
    expect(spec.process.capabilities.effective).toEqual(capabilities);
    expect(spec.linux.seccomp).toEqual(seccompProfile(capabilities, 'amd64'));
    expect(requestCapabilities(DEFAULT_CAPABILITIES, request({ capDrop: ['ALL'] }))).toEqual([]);
  });

  it('read-only rootfs, sysctls, init and user mounts land in the OCI config', () => {
    const userMounts = [{ destination: '/data', type: 'bind', source: '/state/volumes/data/_data', options: ['rbind', 'rprivate', 'rw'] }];
    const spec = buildOciSpec(specInput({ readOnlyRootfs: true, sysctls: { 'net.core.somaxconn': '1024' }, initPath: '/usr/bin/tini-static', userMounts }));
    expect(spec.root).toEqual({ path: 'rootfs', readonly: true });
    expect(spec.linux.sysctl).toEqual({ 'net.core.somaxconn': '1024' });
    expect(spec.process.args).toEqual([INIT_CONTAINER_PATH, '--', 'httpd', '-f']);
    const destinations = spec.mounts.map((mount) => mount.destination);
    expect(spec.mounts.find((mount) => mount.destination === INIT_CONTAINER_PATH)).toEqual({
      destination: INIT_CONTAINER_PATH, type: 'bind', source: '/usr/bin/tini-static', options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev'],
    });
    // User mounts after the kernel filesystems, before /etc/hosts and the secret files.
    expect(destinations.indexOf('/data')).toBeGreaterThan(destinations.indexOf('/sys/fs/cgroup'));
    expect(destinations.indexOf('/data')).toBeLessThan(destinations.indexOf('/etc/hosts'));
    const plain = buildOciSpec(specInput());
    expect(plain.root.readonly).toBe(false);
    expect(plain.linux.sysctl).toBeUndefined();
    expect(plain.process.args).toEqual(['httpd', '-f']);
  });

  it('ulimits become rlimits with RLIM_INFINITY written exactly; nofile defaults to the host limit', () => {
    expect(ociRlimits([], 20_000)).toEqual([{ type: 'RLIMIT_NOFILE', hard: 20_000, soft: 20_000 }]);
    const rlimits = ociRlimits([{ name: 'nofile', soft: 64, hard: 128 }, { name: 'core', soft: -1, hard: -1 }], 20_000);
    expect(rlimits).toEqual([{ type: 'RLIMIT_NOFILE', hard: 128, soft: 64 }, { type: 'RLIMIT_CORE', hard: 'unlimited', soft: 'unlimited' }]);
    const text = serializeOciConfig(buildOciSpec(specInput({ ulimits: [{ name: 'core', soft: -1, hard: -1 }] })));
    expect(text).toContain('"type": "RLIMIT_CORE",\n        "hard": 18446744073709551615,\n        "soft": 18446744073709551615');
    expect(text).not.toContain('unlimited');
  });
});
