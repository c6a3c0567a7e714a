import { describe, expect, it } from 'vitest';
import type { ContainerSpec, ServiceSpec, TaskSpec } from '../../proto/skiff/v1/specs.js';
import { ApiError } from './errors.js';
import { fakeServiceSpec } from './testing/fake-cluster.js';
import { validateServiceSpec } from './validate-service.js';

function refusal(spec: ServiceSpec): string {
  try {
    validateServiceSpec(spec);
  } catch (error) {
    if (error instanceof ApiError) return `${error.code}: ${error.message}`;
    throw error;
  }
  return 'accepted';
}

function withContainer(container: Partial<ContainerSpec>, template: Partial<TaskSpec> = {}): ServiceSpec {
  const spec = fakeServiceSpec('web', 1);
  return { ...spec, taskTemplate: { ...spec.taskTemplate!, container: { ...spec.taskTemplate!.container!, ...container }, ...template } };
}

const PREFIX = 'invalid_argument: cannot accept service spec: taskTemplate.container.';
const volume = { type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 };

describe('validate isolation', () => {
  it('validate isolation accepts every option set well', () => {
    expect(refusal(withContainer({
      user: '1000:1000',
      hostname: 'db-1',
      readOnly: true,
      capAdd: ['NET_ADMIN', 'cap_sys_ptrace'],
      capDrop: ['ALL'],
      sysctls: { 'net.core.somaxconn': '1024', 'kernel.shmmax': '65536' },
      ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }, { name: 'core', soft: -1, hard: -1 }],
      init: true,
      stopSignal: 'SIGQUIT',
      stopGracePeriodMs: 30_000,
      mounts: [volume, { ...volume, type: 'tmpfs', source: '', target: '/tmp', tmpfsSizeBytes: 1 << 20, tmpfsMode: 0o1777 }, { ...volume, type: 'bind', source: '/srv', target: '/srv', readOnly: true }],
    }))).toBe('accepted');
  });

  it('validate isolation names the bad capability, sysctl, ulimit, signal and grace period', () => {
    expect(refusal(withContainer({ capAdd: ['NET_ADMIN', 'FLY'] }))).toBe(`${PREFIX}capAdd[1]: unknown capability "FLY" (use a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL)`);
    expect(refusal(withContainer({ capDrop: ['CAP_NOPE'] }))).toContain(`${PREFIX}capDrop[0]: unknown capability "CAP_NOPE"`);
    expect(refusal(withContainer({ sysctls: { 'kernel.pid_max': '10' } }))).toContain(`${PREFIX}sysctls["kernel.pid_max"]: "kernel.pid_max" is not a namespaced sysctl`);
    expect(refusal(withContainer({ ulimits: [{ name: 'nofile', soft: 10, hard: 5 }] }))).toBe(`${PREFIX}ulimits[0]: nofile soft limit 10 is above its hard limit 5`);
    expect(refusal(withContainer({ ulimits: [{ name: 'openfiles', soft: 1, hard: 1 }] }))).toContain(`${PREFIX}ulimits[0]: unknown ulimit "openfiles"`);
    expect(refusal(withContainer({ ulimits: [{ name: 'core', soft: 0, hard: 0 }, { name: 'core', soft: 0, hard: 0 }] }))).toBe(`${PREFIX}ulimits[1]: core is given twice`);
    expect(refusal(withContainer({ stopSignal: 'SIGSTOPPP' }))).toContain(`${PREFIX}stopSignal: unknown signal "SIGSTOPPP"`);
    expect(refusal(withContainer({ stopGracePeriodMs: -1 }))).toContain(`${PREFIX}stopGracePeriodMs: -1 must be a duration from 0`);
    expect(refusal(withContainer({ hostname: 'bad_host!' }))).toContain(`${PREFIX}hostname: "bad_host!" is not a valid host name`);
    expect(refusal(withContainer({ user: 'a b' }))).toContain(`${PREFIX}user: "a b" must be user[:group]`);
  });

  it('validate isolation names the bad mount by index: type, paths, duplicates, secret collisions', () => {
    expect(refusal(withContainer({ mounts: [volume, { ...volume, type: 'nfs' }] }))).toBe(`${PREFIX}mounts[1]: type "nfs" must be bind, volume or tmpfs`);
    expect(refusal(withContainer({ mounts: [{ ...volume, target: 'data' }] }))).toBe(`${PREFIX}mounts[0]: target "data" must be an absolute path`);
    expect(refusal(withContainer({ mounts: [{ ...volume, type: 'bind', source: 'srv' }] }))).toBe(`${PREFIX}mounts[0]: source "srv" must be an absolute path`);
    expect(refusal(withContainer({ mounts: [volume, { ...volume, source: 'other' }] }))).toBe(`${PREFIX}mounts[1]: target /data is also the target of mount 0`);
    const secrets = [{ secretId: '', secretName: 'db', target: '', uid: 0, gid: 0, mode: 0 }];
    expect(refusal(withContainer({ secrets, mounts: [{ ...volume, target: '/run/secrets' }] }))).toBe(`${PREFIX}mounts[0]: target /run/secrets collides with the secret or config file /run/secrets/db`);
  });

  it('validate isolation refuses a tiny memory limit and reservations above their limits', () => {
    const resources = (limits: { nanoCpus: number; memoryBytes: number }, reservations: { nanoCpus: number; memoryBytes: number }) =>
      withContainer({}, { resources: { limits: { ...limits, pids: 0 }, reservations: { ...reservations, pids: 0 } } });
    expect(refusal(resources({ nanoCpus: 0, memoryBytes: 1024 }, { nanoCpus: 0, memoryBytes: 0 }))).toBe(
      'invalid_argument: cannot accept service spec: taskTemplate.resources.limits.memoryBytes: 1024 bytes is below the minimum of 6291456 (6 MiB)',
    );
    expect(refusal(resources({ nanoCpus: 1e9, memoryBytes: 64 << 20 }, { nanoCpus: 2e9, memoryBytes: 0 }))).toBe(
      'invalid_argument: cannot accept service spec: taskTemplate.resources.reservations.nanoCpus: 2000000000 is above limits.nanoCpus 1000000000',
    );
    expect(refusal(resources({ nanoCpus: 0, memoryBytes: 64 << 20 }, { nanoCpus: 2e9, memoryBytes: 32 << 20 }))).toBe('accepted');
  });
});
