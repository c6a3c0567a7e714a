import { describe, expect, it } from 'vitest';
import { applyIsolationFlags, isolationFromFlags, parseMountFlag, parseSysctlFlags, parseUlimitFlags } from './isolation-flags.js';
import { FlagError, specFromFlags } from './service-flags.js';

describe('isolation flags', () => {
  it('isolation flags set read-only, capabilities, sysctls, ulimits, init and stop settings', () => {
    const spec = applyIsolationFlags(specFromFlags('demo/web:v1', [], { name: 'web', replicas: '1', env: [], label: [] }), {
      readOnly: true,
      capAdd: ['net_admin', 'CAP_SYS_PTRACE'],
      capDrop: ['ALL'],
      sysctl: ['net.ipv4.ip_unprivileged_port_start=0', 'kernel.shmmax=65536'],
      ulimit: ['nofile=1024:2048', 'core=-1'],
      init: true,
      stopSignal: 'SIGINT',
      stopGracePeriod: '1m30s',
      mount: ['type=volume,src=data,dst=/data'],
    });
    expect(spec.taskTemplate?.container).toMatchObject({
      image: 'demo/web:v1',
      readOnly: true,
      capAdd: ['NET_ADMIN', 'CAP_SYS_PTRACE'],
      capDrop: ['ALL'],
      sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.shmmax': '65536' },
      ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }, { name: 'core', soft: -1, hard: -1 }],
      init: true,
      stopSignal: 'SIGINT',
      stopGracePeriodMs: 90_000,
      mounts: [{ type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 }],
    });
    const plain = applyIsolationFlags(specFromFlags('demo/web:v1', [], { name: 'web', replicas: '1', env: [], label: [] }), {});
    expect(plain.taskTemplate?.container).toMatchObject({ readOnly: false, init: false, stopSignal: '', stopGracePeriodMs: 0, mounts: [], capAdd: [] });
  });

  it('--mount takes Docker syntax: aliases, readonly forms, tmpfs size and mode, volume by default', () => {
    expect(parseMountFlag('type=bind,source=/srv/www,target=/usr/share/www,readonly')).toEqual({ type: 'bind', source: '/srv/www', target: '/usr/share/www', readOnly: true, tmpfsSizeBytes: 0, tmpfsMode: 0 });
    expect(parseMountFlag('src=cache,destination=/cache,ro=true')).toMatchObject({ type: 'volume', source: 'cache', target: '/cache', readOnly: true });
    expect(parseMountFlag('type=volume,target=/anon,readonly=0')).toMatchObject({ source: '', readOnly: false });
    expect(parseMountFlag('type=tmpfs,dst=/scratch,tmpfs-size=64m,tmpfs-mode=1770')).toEqual({ type: 'tmpfs', source: '', target: '/scratch', readOnly: false, tmpfsSizeBytes: 64 << 20, tmpfsMode: 0o1770 });
  });

  it('--mount names the flag and the problem', () => {
    const cases: Array<[string, string]> = [
      ['type=nfs,dst=/x', 'type "nfs" must be bind, volume or tmpfs'],
      ['type=volume,src=data', 'target is missing'],
      ['type=bind,dst=/x', 'source is missing'],
      ['type=tmpfs,src=x,dst=/x', 'a tmpfs mount takes no source'],
      ['type=volume,src=a,dst=/x,tmpfs-size=1m', 'tmpfs-size and tmpfs-mode are for type=tmpfs'],
      ['type=tmpfs,dst=/x,tmpfs-mode=999', 'tmpfs-mode must be an octal mode'],
      ['type=volume,src=a,dst=/x,volume-nocopy', 'unknown field "volume-nocopy"'],
      ['src=a,src=b,dst=/x', 'source is given twice'],
      ['src=a,dst=/x,readonly=maybe', 'readonly must be true or false'],
      ['src,dst=/x', '"src" must be KEY=VALUE'],
    ];
    for (const [value] of cases) expect(() => parseMountFlag(value), value).toThrow(FlagError);
    for (const [value, reason] of cases) expect(() => parseMountFlag(value), value).toThrow(`invalid value "${value}" for --mount: ${reason}`);
  });

  it('--ulimit, --sysctl, --cap-add, --stop-signal and --stop-grace-period refuse bad values naming the flag', () => {
    expect(parseUlimitFlags(['nproc=100'])).toEqual([{ name: 'nproc', soft: 100, hard: 100 }]);
    expect(() => parseUlimitFlags(['nofile=2048:1024'])).toThrow('invalid value "nofile=2048:1024" for --ulimit: nofile soft limit 2048 is above its hard limit 1024');
    expect(() => parseUlimitFlags(['files=1'])).toThrow('invalid value "files=1" for --ulimit: unknown ulimit "files"');
    expect(() => parseUlimitFlags(['nofile'])).toThrow('invalid value "nofile" for --ulimit: use NAME=SOFT[:HARD]');
    expect(() => parseUlimitFlags(['nofile=1', 'nofile=2'])).toThrow('for --ulimit: nofile is given twice');
    expect(parseSysctlFlags(['net.core.somaxconn=1', 'net.core.somaxconn=2'])).toEqual({ 'net.core.somaxconn': '2' });
    expect(() => parseSysctlFlags(['vm.swappiness=1'])).toThrow('invalid value "vm.swappiness=1" for --sysctl: "vm.swappiness" is not a namespaced sysctl');
    expect(() => parseSysctlFlags(['net.core.somaxconn'])).toThrow('for --sysctl: must be KEY=VALUE');
    expect(() => isolationFromFlags({ capAdd: ['FLY'] })).toThrow('invalid value "FLY" for --cap-add: unknown capability "FLY"');
    expect(() => isolationFromFlags({ capDrop: ['nope'] })).toThrow('for --cap-drop: unknown capability "nope"');
    expect(() => isolationFromFlags({ stopSignal: 'SIGWHAT' })).toThrow('invalid value "SIGWHAT" for --stop-signal: unknown signal');
    expect(() => isolationFromFlags({ stopGracePeriod: '10' })).toThrow('invalid value "10" for --stop-grace-period: use a duration');
  });
});
