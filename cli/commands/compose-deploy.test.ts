import { describe, expect, it } from 'vitest';
import { composeServiceSpec, webService } from './testing/compose-plan.js';

const deployed = (lines: string, environment: Record<string, string> = {}) => composeServiceSpec(webService(`    deploy:\n${lines}`), 'web', environment);

describe('compose deploy section', () => {
  it('compose deploy section sets replicas (one by default) or global mode', () => {
    expect(composeServiceSpec(webService(''), 'web').mode).toEqual({ $case: 'replicated', value: { replicas: 1 } });
    expect(deployed('      replicas: 3\n').mode).toEqual({ $case: 'replicated', value: { replicas: 3 } });
    expect(deployed('      replicas: ${N}\n', { N: '5' }).mode).toEqual({ $case: 'replicated', value: { replicas: 5 } });
    expect(deployed('      mode: global\n').mode).toEqual({ $case: 'global', value: {} });
  });

  it('compose deploy section sets placement constraints, spread preferences and max replicas per node', () => {
    expect(deployed('      placement:\n        constraints: [node.role==worker, "node.labels.zone != b"]\n        preferences: [{spread: node.labels.zone}]\n        max_replicas_per_node: 2\n').taskTemplate?.placement).toEqual({
      constraints: ['node.role==worker', 'node.labels.zone!=b'],
      preferences: [{ spread: 'node.labels.zone' }],
      maxReplicasPerNode: 2,
    });
  });

  it('compose deploy section sets limits and reservations', () => {
    expect(deployed('      resources:\n        limits: {cpus: "0.5", memory: 512M, pids: 100}\n        reservations: {cpus: 0.25, memory: 134217728}\n').taskTemplate?.resources).toEqual({
      limits: { nanoCpus: 500_000_000, memoryBytes: 512 * 1024 ** 2, pids: 100 },
      reservations: { nanoCpus: 250_000_000, memoryBytes: 128 * 1024 ** 2, pids: 0 },
    });
    expect(deployed('      resources: {limits: {memory: 1g}}\n').taskTemplate?.resources).toEqual({ limits: { nanoCpus: 0, memoryBytes: 1024 ** 3, pids: 0 }, reservations: undefined });
  });

  it('compose deploy section sets the restart policy', () => {
    expect(deployed('      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}\n').taskTemplate?.restartPolicy).toEqual({ condition: 'on-failure', delayMs: 5_000, maxAttempts: 3, windowMs: 120_000 });
  });

  it('compose deploy section sets update and rollback configs', () => {
    const spec = deployed('      update_config: {parallelism: 2, delay: 10s, failure_action: rollback, monitor: 30s, max_failure_ratio: 0.2, order: start-first}\n      rollback_config: {parallelism: 0, order: stop-first}\n');
    expect(spec.updateConfig).toEqual({ parallelism: 2, delayMs: 10_000, failureAction: 'rollback', monitorMs: 30_000, maxFailureRatio: 0.2, order: 'start-first' });
    expect(spec.rollbackConfig).toEqual({ parallelism: 0, delayMs: 0, failureAction: '', monitorMs: 0, maxFailureRatio: 0, order: 'stop-first' });
  });

  it('compose deploy section sets the endpoint mode, with or without ports', () => {
    expect(deployed('      endpoint_mode: dnsrr\n').endpoint).toEqual({ mode: 'dnsrr', ports: [] });
  });
});
