import { describe, expect, it } from 'vitest';
import { requestProblem } from './bundle.js';
import { conmonArgs } from './conmon.js';
import { containerResolvConf, hostsFileContent } from './rootfs.js';
import { runcErrorMessage } from './runc.js';
import type { ContainerRequest } from './types.js';

const request: ContainerRequest = {
  containerId: 'task-1_a', hostname: 'task-1', layerDirs: ['/layers/a'], argv: ['sh'], env: ['A=1'], user: '', workingDir: '',
  memoryLimitBytes: 0, nanoCpus: 0, pidsLimit: 0, labels: {}, files: [],
};

describe('runtime parsing helpers', () => {
  it('runc error message unwraps logrus lines', () => {
    const stderr = 'time="2026-11-23T14:26:36Z" level=error msg="runc create failed: exec: \\"/nonexistent\\": stat /nonexistent: no such file or directory"\n';
    expect(runcErrorMessage(stderr)).toBe('runc create failed: exec: "/nonexistent": stat /nonexistent: no such file or directory');
    expect(runcErrorMessage('plain failure\n')).toBe('plain failure');
    expect(runcErrorMessage('')).toBe('runc failed without a message');
  });

  it('resolv.conf drops loopback nameservers and falls back when none is left', () => {
    expect(containerResolvConf('nameserver 127.0.0.53\nsearch lan\n')).toBe('search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n');
    expect(containerResolvConf('nameserver 10.0.0.1\nnameserver ::1\n')).toBe('nameserver 10.0.0.1\n');
    expect(containerResolvConf(undefined)).toContain('nameserver 8.8.8.8');
  });

  it('resolv.conf names only the embedded resolver when there is one, keeping the host search domains', () => {
    expect(containerResolvConf('nameserver 10.0.0.1\nsearch lan\noptions edns0\n', '198.18.1.1')).toBe('nameserver 198.18.1.1\nsearch lan\noptions ndots:0\n');
  });

  it('hosts file names the container address', () => {
    expect(hostsFileContent('web', ['198.18.1.2'])).toBe('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n198.18.1.2\tweb\n');
  });

  it('request validation names the bad field', () => {
    expect(requestProblem(request)).toBeUndefined();
    expect(requestProblem({ ...request, containerId: 'Bad' })).toMatch(/containerId must match/);
    expect(requestProblem({ ...request, argv: [] })).toMatch(/argv is empty/);
    expect(requestProblem({ ...request, layerDirs: [] })).toMatch(/layerDirs is empty/);
    expect(requestProblem({ ...request, layerDirs: ['relative'] })).toMatch(/must be absolute/);
    expect(requestProblem({ ...request, layerDirs: ['/a:b'] })).toMatch(/without ':'/);
    expect(requestProblem({ ...request, env: ['NOVALUE'] })).toMatch(/KEY=VALUE/);
    expect(requestProblem({ ...request, workingDir: 'tmp' })).toMatch(/workingDir must be absolute/);
    expect(requestProblem({ ...request, memoryLimitBytes: -1 })).toMatch(/memoryLimitBytes/);
    expect(requestProblem({ ...request, hostname: 'bad host' })).toMatch(/hostname/);
  });

  it('request validation refuses bad secret and config files', () => {
    const file = { containerPath: '/run/secrets/db', data: new Uint8Array([1]), uid: 0, gid: 0, mode: 0o444 };
    expect(requestProblem({ ...request, files: [file] })).toBeUndefined();
    expect(requestProblem({ ...request, files: [{ ...file, containerPath: 'run/secrets/db' }] })).toMatch(/must be absolute and normalized/);
    expect(requestProblem({ ...request, files: [{ ...file, containerPath: '/run/secrets/../../etc/passwd' }] })).toMatch(/must be absolute and normalized/);
    expect(requestProblem({ ...request, files: [file, { ...file }] })).toMatch(/two files have the path \/run\/secrets\/db/);
    expect(requestProblem({ ...request, files: [{ ...file, mode: 0o4755 }] })).toMatch(/mode of file/);
    expect(requestProblem({ ...request, files: [{ ...file, uid: -1 }] })).toMatch(/uid of file/);
  });

  it('conmon args name the runc root, exit dir and k8s-file log', () => {
    const args = conmonArgs({
      containerId: 'c1', bundleDir: '/s/containers/c1', runcPath: '/usr/sbin/runc', runcRoot: '/r', containerPidFile: '/s/c1/container.pid',
      conmonPidFile: '/s/c1/conmon.pid', exitDir: '/s/exits', persistDir: '/s/c1/persist', logPath: '/s/logs/c1.log', socketDir: '/s/sockets', stderrPath: '/x',
    });
    const value = (flag: string): string | undefined => args[args.indexOf(flag) + 1];
    expect(value('--runtime-arg')).toBe('--root=/r');
    expect(value('--exit-dir')).toBe('/s/exits');
    expect(value('--log-path')).toBe('k8s-file:/s/logs/c1.log');
    expect(value('--api-version')).toBe('1');
    expect(args).not.toContain('--syslog');
  });
});
