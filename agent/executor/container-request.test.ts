import { describe, expect, it } from 'vitest';
import type { Task } from '../../proto/skiff/v1/objects.js';
import type { ContainerSpec } from '../../proto/skiff/v1/specs.js';
import type { PulledImage } from '../image/types.js';
import { containerRequest, DEFAULT_PIDS_LIMIT, stopOptions, taskName } from './container-request.js';
import { fakeTask } from './testing/fake-tasks.js';

const image: PulledImage = {
  reference: 'demo/web:v1',
  digest: 'sha256:0',
  config: { entrypoint: [], cmd: ['httpd'], env: ['PATH=/bin'], workingDir: '', user: '' },
  layerDirs: ['/layers/base'],
};

function taskWith(container: Partial<ContainerSpec>, resources?: NonNullable<Task['spec']>['resources']): Task {
  const task = fakeTask('t1');
  return { ...task, spec: { ...task.spec!, container: { ...task.spec!.container!, ...container }, resources } };
}

describe('container request', () => {
  it('container request carries the isolation options, mounts and limits of the spec', () => {
    const request = containerRequest(
      taskWith(
        {
          readOnly: true,
          capAdd: ['NET_ADMIN'],
          capDrop: ['ALL'],
          sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' },
          ulimits: [{ name: 'nofile', soft: 100, hard: 200 }],
          init: true,
          mounts: [
            { type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 },
            { type: 'tmpfs', source: '', target: '/scratch', readOnly: false, tmpfsSizeBytes: 1 << 20, tmpfsMode: 0o700 },
          ],
        },
        { limits: { nanoCpus: 5e8, memoryBytes: 64 << 20, pids: 50 }, reservations: undefined },
      ),
      image,
    );
    expect(request).toMatchObject({
      readOnlyRootfs: true,
      capAdd: ['NET_ADMIN'],
      capDrop: ['ALL'],
      sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' },
      ulimits: [{ name: 'nofile', soft: 100, hard: 200 }],
      init: true,
      mounts: [
        { type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 },
        { type: 'tmpfs', source: '', target: '/scratch', readOnly: false, tmpfsSizeBytes: 1 << 20, tmpfsMode: 0o700 },
      ],
      memoryLimitBytes: 64 << 20,
      nanoCpus: 5e8,
      pidsLimit: 50,
    });
  });

  it('container request defaults: task name as hostname, default pids limit, nothing extra', () => {
    const task = taskWith({});
    const request = containerRequest(task, image);
    expect(request).toMatchObject({ hostname: taskName(task), pidsLimit: DEFAULT_PIDS_LIMIT, readOnlyRootfs: false, capAdd: [], capDrop: [], init: false, mounts: [], ulimits: [] });
    expect(containerRequest(taskWith({ hostname: 'db' }), image).hostname).toBe('db');
    // A long service name: the task name is cut to a valid host name.
    const base = taskWith({});
    const long = { ...base, serviceName: 'a-service-name-of-fifty-characters-xxxxxxxxxxxxxxx', meta: { ...base.meta!, id: 'k'.repeat(25) } };
    expect(taskName(long)).toHaveLength(50 + 3 + 25);
    expect(containerRequest(long, image).hostname).toBe(taskName(long).slice(0, 63));
    expect(containerRequest({ ...long, serviceName: 'a'.repeat(61) }, image).hostname).toBe(`${'a'.repeat(61)}.1`);
  });

  it('stop options take the spec signal and grace period, else SIGTERM and the default', () => {
    expect(stopOptions(taskWith({}), 10_000)).toEqual({ signal: 'SIGTERM', timeoutMs: 10_000 });
    expect(stopOptions(taskWith({ stopSignal: 'SIGQUIT', stopGracePeriodMs: 30_000 }), 10_000)).toEqual({ signal: 'SIGQUIT', timeoutMs: 30_000 });
  });
});
