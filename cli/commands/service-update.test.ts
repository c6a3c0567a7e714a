import { describe, expect, it } from 'vitest';
import { Service } from '../../proto/skiff/v1/objects.js';
import type { ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { specFromFlags } from './service-flags.js';
import { applyUpdateFlags, mergedHealthcheck, noUpdateFlags, parseStrategyFlags, progressLine, slotProgress, type UpdateFlags } from './service-update.js';
import { splitArgs } from './service-flags.js';
import { parseUpdateConfig, updateConfigFlags } from './update-config-flags.js';

function flags(overrides: Partial<UpdateFlags> = {}): UpdateFlags {
  return { ...noUpdateFlags(), ...overrides };
}

function current(): ServiceSpec {
  return specFromFlags('demo/web:v1', ['httpd', '-f'], {
    name: 'web', replicas: '3', env: ['A=1', 'B=2'], label: ['team=web'], constraint: ['node.role==worker'], publish: ['8080:80'], network: ['front'],
  });
}

describe('service update flags', () => {
  it('changes only what the flags name', () => {
    const before = current();
    expect(applyUpdateFlags(before, flags())).toEqual(before);
    const after = applyUpdateFlags(before, flags({ image: 'demo/web:v2', replicas: '5', envAdd: ['B=3', 'C=4'], envRm: ['A'], labelAdd: ['tier=front'], labelRm: ['team'] }));
    expect(after.taskTemplate?.container?.image).toBe('demo/web:v2');
    expect(after.mode).toEqual({ $case: 'replicated', value: { replicas: 5 } });
    expect(after.taskTemplate?.container?.env).toEqual(['B=3', 'C=4']);
    expect(after.labels).toEqual({ tier: 'front' });
    expect(after.taskTemplate?.container?.args).toEqual(['httpd', '-f']);
    expect(after.taskTemplate?.placement?.constraints).toEqual(['node.role==worker']);
  });

  it('adds and removes constraints, ports, networks, and bumps force', () => {
    const after = applyUpdateFlags(current(), flags({
      constraintAdd: ['node.labels.zone==a'], constraintRm: ['node.role == worker'],
      publishAdd: ['9090:90'], publishRm: ['8080'],
      networkAdd: ['back'], networkRm: ['front'],
      force: true, args: `sh -c 'echo "hi there"'`,
    }));
    expect(after.taskTemplate?.placement?.constraints).toEqual(['node.labels.zone==a']);
    expect(after.endpoint?.ports.map((port) => `${port.publishedPort}:${port.targetPort}`)).toEqual(['9090:90']);
    expect(after.taskTemplate?.networks).toEqual(['back']);
    expect(after.taskTemplate?.forceUpdate).toBe(1);
    expect(after.taskTemplate?.container?.args).toEqual(['sh', '-c', 'echo "hi there"']);
  });

  it('network flags take ids from the lookup, drop a removed network with its aliases, and take aliases on an added one', () => {
    // As the manager stores it: network ids.
    const stored: ServiceSpec = { ...current(), taskTemplate: { ...current().taskTemplate!, networks: ['id-front'] } };
    const before = applyUpdateFlags(stored, flags({ networkAdd: ['name=front,alias=shop', 'back'] }), new Map([['front', 'id-front'], ['back', 'id-back']]));
    expect(before.taskTemplate).toMatchObject({ networks: ['id-front', 'id-back'], networkAliases: [{ network: 'id-front', aliases: ['shop'] }] });
    // The spec holds ids; the user names the network.
    const removed = applyUpdateFlags(before, flags({ networkRm: ['front'] }), new Map([['front', 'id-front']]));
    expect(removed.taskTemplate).toMatchObject({ networks: ['id-back'], networkAliases: [] });
    const aliased = applyUpdateFlags(before, flags({ networkAdd: ['target=back,alias=db'] }), new Map([['back', 'id-back']]));
    expect(aliased.taskTemplate).toMatchObject({ networks: ['id-front', 'id-back'], networkAliases: [{ network: 'id-front', aliases: ['shop'] }, { network: 'id-back', aliases: ['db'] }] });
    expect(() => applyUpdateFlags(before, flags({ networkAdd: ['name=back,aliases=db'] }))).toThrow('invalid value "name=back,aliases=db" for --network-add: unknown field "aliases" (use name or alias)');
  });

  it('refuses bad values, naming the flag', () => {
    expect(() => applyUpdateFlags(current(), flags({ replicas: '-1' }))).toThrow('--replicas');
    expect(() => applyUpdateFlags(current(), flags({ publishRm: ['http'] }))).toThrow('--publish-rm');
    expect(() => applyUpdateFlags(current(), flags({ restartCondition: 'sometimes' }))).toThrow('--restart-condition');
    expect(() => splitArgs('echo "unterminated')).toThrow('unterminated');
    const global = { ...current(), mode: { $case: 'global' as const, value: {} } };
    expect(() => applyUpdateFlags(global, flags({ replicas: '2' }))).toThrow('cannot use --replicas: the service is global');
  });

  it('parses --update-* and --rollback-* over the current config', () => {
    const given = updateConfigFlags({ updateParallelism: '2', updateDelay: '10s', updateFailureAction: 'rollback', updateMonitor: '30s', updateMaxFailureRatio: '0.2', updateOrder: 'start-first', rollbackParallelism: '0' }, 'update');
    expect(parseUpdateConfig('update', given, undefined)).toEqual({ parallelism: 2, delayMs: 10_000, failureAction: 'rollback', monitorMs: 30_000, maxFailureRatio: 0.2, order: 'start-first' });
    expect(parseUpdateConfig('update', {}, undefined)).toBeUndefined();
    const base = { parallelism: 4, delayMs: 0, failureAction: 'pause', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' };
    expect(parseUpdateConfig('rollback', { parallelism: '0' }, base)).toEqual({ ...base, parallelism: 0 });
    expect(() => parseUpdateConfig('rollback', { failureAction: 'rollback' }, undefined)).toThrow('invalid value "rollback" for --rollback-failure-action: use pause, continue');
    expect(() => parseUpdateConfig('update', { maxFailureRatio: '1.5' }, undefined)).toThrow('--update-max-failure-ratio');
    expect(() => parseUpdateConfig('update', { order: 'random' }, undefined)).toThrow('--update-order');
  });

  it('describes rollout progress', () => {
    const service = Service.fromPartial({ specVersion: 2, updateStatus: { state: 'updating', message: 'update in progress' } });
    const tasks = [
      { slot: 1, specVersion: 2, desiredState: 7, status: { state: 7 } },
      { slot: 2, specVersion: 2, desiredState: 7, status: { state: 6 } },
      { slot: 2, specVersion: 1, desiredState: 7, status: { state: 7 } },
      { slot: 3, specVersion: 1, desiredState: 7, status: { state: 7 } },
    ];
    expect(progressLine(service, tasks)).toBe('updating: 1/3 running the new version, 1 starting (update in progress)');
  });
});

describe('service update health flags', () => {
  it('a probe flag replaces the probe, a timing flag only that timing, and no flag keeps the check', () => {
    const current = { test: ['CMD-SHELL', 'true'], intervalMs: 1_000, timeoutMs: 2_000, retries: 3, startPeriodMs: 0, http: undefined, tcpPort: 0 };
    expect(mergedHealthcheck(current, {})).toBe(current);
    expect(mergedHealthcheck(current, { healthInterval: '5s' })).toEqual({ ...current, intervalMs: 5_000 });
    expect(mergedHealthcheck(current, { healthHttp: '80/ready' })).toEqual({ ...current, test: [], http: { port: 80, path: '/ready' } });
    expect(mergedHealthcheck(current, { healthcheck: false })?.test).toEqual(['NONE']);
    expect(mergedHealthcheck(undefined, { healthTcp: '5432' })).toMatchObject({ tcpPort: 5432, intervalMs: 0 });
  });
});

describe('service update isolation flags', () => {
  it('moves capabilities between add and drop, and adds or removes mounts, sysctls and ulimits by key', () => {
    const base = current();
    const container = base.taskTemplate!.container!;
    const spec = { ...base, taskTemplate: { ...base.taskTemplate!, container: { ...container, capDrop: ['NET_RAW'], mounts: [{ type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 }], sysctls: { 'net.core.somaxconn': '512' }, ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }] } } };
    const after = applyUpdateFlags(spec, flags({
      capAdd: ['NET_RAW'], capDrop: ['CHOWN'], mountAdd: ['type=tmpfs,dst=/cache'], mountRm: ['/data'], sysctlAdd: ['net.ipv4.tcp_syncookies=1'], sysctlRm: ['net.core.somaxconn'],
      ulimitAdd: ['nproc=100:200'], ulimitRm: ['nofile'], readOnly: true, init: true, stopSignal: 'SIGINT', stopGracePeriod: '30s',
    })).taskTemplate!.container!;
    expect(after.capAdd).toEqual(['NET_RAW']);
    expect(after.capDrop).toEqual(['CHOWN']);
    expect(after.mounts.map((mount) => `${mount.type}:${mount.target}`)).toEqual(['tmpfs:/cache']);
    expect(after.sysctls).toEqual({ 'net.ipv4.tcp_syncookies': '1' });
    expect(after.ulimits).toEqual([{ name: 'nproc', soft: 100, hard: 200 }]);
    expect(after).toMatchObject({ readOnly: true, init: true, stopSignal: 'SIGINT', stopGracePeriodMs: 30_000 });
    expect(() => applyUpdateFlags(spec, flags({ capAdd: ['FLY'] }))).toThrow('--cap-add');
  });
});

describe('update strategy flags', () => {
  it('--update-strategy, --bluegreen-hold and --canary-replicas', () => {
    const none = { deployStrategy: '', bluegreenHoldMs: 0, canaryReplicas: 0 };
    expect(parseStrategyFlags({ updateStrategy: 'blue-green', bluegreenHold: '30s' }, none)).toEqual({ deployStrategy: 'blue-green', bluegreenHoldMs: 30_000, canaryReplicas: 0 });
    expect(parseStrategyFlags({ updateStrategy: 'canary', canaryReplicas: '2' }, none)).toEqual({ deployStrategy: 'canary', bluegreenHoldMs: 0, canaryReplicas: 2 });
    expect(parseStrategyFlags({ updateStrategy: 'rolling' }, { ...none, deployStrategy: 'canary' }).deployStrategy).toBe('');
    expect(parseStrategyFlags({}, { deployStrategy: 'canary', bluegreenHoldMs: 0, canaryReplicas: 1 })).toEqual({ deployStrategy: 'canary', bluegreenHoldMs: 0, canaryReplicas: 1 });
    expect(() => parseStrategyFlags({ updateStrategy: 'canary' }, none)).toThrow('--canary-replicas');
    expect(() => parseStrategyFlags({ updateStrategy: 'big-bang' }, none)).toThrow('--update-strategy');
  });
});

describe('per-slot progress', () => {
  it('shows where each slot\'s newest task of the new version is', () => {
    const service = Service.fromPartial({ spec: { name: 'web' }, specVersion: 2 });
    const lines = slotProgress(service, [
      { slot: 1, nodeId: 'n1', specVersion: 2, desiredState: 7, meta: { id: 'a', version: 0, createdAtMs: 1, updatedAtMs: 0 }, status: { state: 7, health: 2, message: '', err: '', timestampMs: 0, exitCode: 0, containerId: '', pid: 0 } },
      { slot: 2, nodeId: 'n1', specVersion: 2, desiredState: 7, meta: { id: 'b', version: 0, createdAtMs: 1, updatedAtMs: 0 }, status: { state: 10, health: 0, message: '', err: 'task: non-zero exit (1)', timestampMs: 0, exitCode: 1, containerId: '', pid: 0 } },
      { slot: 2, nodeId: 'n1', specVersion: 2, desiredState: 7, meta: { id: 'c', version: 0, createdAtMs: 2, updatedAtMs: 0 }, status: { state: 6, health: 1, message: '', err: '', timestampMs: 0, exitCode: 0, containerId: '', pid: 0 } },
      { slot: 3, nodeId: 'n1', specVersion: 1, desiredState: 7, meta: { id: 'd', version: 0, createdAtMs: 1, updatedAtMs: 0 }, status: { state: 7, health: 0, message: '', err: '', timestampMs: 0, exitCode: 0, containerId: '', pid: 0 } },
    ]);
    expect([...lines.values()]).toEqual(['web.1: new version running (healthy)', 'web.2: new version starting (health: starting)']);
  });
});
