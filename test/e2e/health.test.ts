/**
 * Issue 7 point 4 on the lab (1 manager, 1 worker, real runc): a task with a health check runs
 * only once it has been healthy and shows its health in `service ps`; a check that fails, from the
 * start or after the task was healthy, fails the task ("task: container unhealthy") and its restart
 * policy replaces it with a new task in the same slot.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labRestart, labUp, leftovers, type LabState } from '../../deploy/lab/index.js';
import { skiff, skiffJson, type TaskRow, uniqueLab, waitFor } from './helpers.js';

const { name: lab, home } = uniqueLab('hlth');
let state: LabState;

const ps = (service: string): Promise<TaskRow[]> => skiffJson<TaskRow[]>(home, ['service', 'ps', service]);
/** Fast checks keep the file short; the restart delay is short for the same reason. */
const FAST = ['--health-interval', '300ms', '--health-timeout', '2s', '--restart-delay', '200ms'];

beforeAll(async () => {
  process.env['SKIFF_HOME'] = home;
  state = await labUp({ name: lab, managers: 1, workers: 1 });
  await waitFor('2 ready nodes', 60_000, async () => {
    const nodes = await skiffJson<Array<{ status: string }>>(home, ['node', 'ls']);
    return nodes.filter((node) => node.status === 'ready').length === 2 ? nodes : undefined;
  });
});

afterAll(async () => {
  await labDown(lab).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

describe('health checks on the lab', () => {
  it('service create refuses conflicting or malformed health flags, naming the flag or field', async () => {
    const both = await skiff(home, ['service', 'create', '--name', 'bad', '--health-http', '80/', '--health-tcp', '80', 'demo/web:v1']);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain('use only one of --health-cmd, --health-http and --health-tcp');
    const port = await skiff(home, ['service', 'create', '--name', 'bad', '--health-http', '99999/index.html', 'demo/web:v1']);
    expect(port.stderr).toContain('invalid value "99999" for --health-http: the port must be from 1 to 65535');
    expect(await skiffJson<unknown[]>(home, ['service', 'ls'])).toEqual([]);
  });

  it('a task with an HTTP check is starting until its first healthy probe, then running and healthy', async () => {
    // A slow first probe (2 s) leaves time to see the task waiting for its health.
    const created = await skiff(home, ['service', 'create', '-d', '--name', 'web', '--health-http', '80/index.html', '--health-interval', '2s', 'demo/web:v1']);
    expect(created.code, created.stderr).toBe(0);
    const starting = await waitFor('the task started, health starting', 60_000, async () => (await ps('web')).find((row) => row.state === 'starting' && row.health === 'starting'));
    const healthy = await waitFor('the task running and healthy', 30_000, async () => (await ps('web')).find((row) => row.state === 'running' && row.health === 'healthy'));
    expect(healthy.id).toBe(starting.id);
    const table = await skiff(home, ['service', 'ps', 'web']);
    expect(table.stdout).toMatch(/running \(healthy\)/);
    // It stays healthy: probes keep passing and the task keeps running.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect((await ps('web')).map((row) => [row.id, row.state, row.health])).toEqual([[healthy.id, 'running', 'healthy']]);
    expect((await skiff(home, ['service', 'rm', 'web'])).code).toBe(0);
  });

  it('a task whose check never passes fails as unhealthy and is replaced in its slot', async () => {
    const created = await skiff(home, ['service', 'create', '-d', '--name', 'sick', ...FAST, '--health-retries', '2', '--health-http', '81/', 'demo/web:v1']);
    expect(created.code, created.stderr).toBe(0);
    const rows = await waitFor('an unhealthy task failed and a newer one in its slot', 60_000, async () => {
      const all = await ps('sick');
      const failed = all.find((row) => row.state === 'failed' && row.health === 'unhealthy');
      return failed !== undefined && all.some((row) => row.slot === failed.slot && row.id !== failed.id) ? all : undefined;
    });
    const failed = rows.find((row) => row.state === 'failed')!;
    expect(failed.error).toMatch(/^task: container unhealthy: GET http:\/\/[\d.]+:81\/: connect ECONNREFUSED/);
    expect(failed.desiredState).toBe('shutdown');
    // No task of this service was ever counted as running.
    expect(rows.every((row) => row.state !== 'running')).toBe(true);
    expect((await skiff(home, ['service', 'rm', 'sick'])).code).toBe(0);
  });

  it('a healthy task whose check starts failing is stopped, fails as unhealthy and is replaced', async () => {
    // The container makes /tmp/ok, and removes it 3 s later; its check tests for the file.
    const script = 'touch /tmp/ok; (sleep 3; rm -f /tmp/ok) & exec /bin/demo-web';
    const created = await skiff(home, ['service', 'create', '-d', '--name', 'flaky', ...FAST, '--health-retries', '2', '--health-cmd', 'test -f /tmp/ok', '--entrypoint', '/bin/sh', 'demo/web:v1', '-c', script]);
    expect(created.code, created.stderr).toBe(0);
    const first = await waitFor('the first task running and healthy', 60_000, async () => (await ps('flaky')).find((row) => row.state === 'running' && row.health === 'healthy'));
    const rows = await waitFor('the first task failed as unhealthy and a new task in its slot running', 60_000, async () => {
      const all = await ps('flaky');
      const old = all.find((row) => row.id === first.id);
      const replacement = all.find((row) => row.slot === first.slot && row.id !== first.id && row.state === 'running' && row.health === 'healthy');
      return old?.state === 'failed' && replacement !== undefined ? all : undefined;
    });
    const old = rows.find((row) => row.id === first.id)!;
    expect(old).toMatchObject({ health: 'unhealthy', desiredState: 'shutdown', pid: 0 });
    expect(old.error).toBe('task: container unhealthy: health check exited with code 1');
    const table = await skiff(home, ['service', 'ps', 'flaky']);
    expect(table.stdout).toMatch(/failed \(unhealthy\)/);
    expect((await skiff(home, ['service', 'rm', 'flaky'])).code).toBe(0);
  });

  it('an agent restart keeps a healthy task running, and its new monitor still replaces it when it turns unhealthy', async () => {
    const created = await skiff(home, ['service', 'create', '-d', '--name', 'steady', ...FAST, '--health-retries', '2', '--health-cmd', 'test -f /tmp/ok',
      '--constraint', 'node.role==worker', '--entrypoint', '/bin/sh', 'demo/web:v1', '-c', 'touch /tmp/ok; exec /bin/demo-web']);
    expect(created.code, created.stderr).toBe(0);
    const task = await waitFor('the task running and healthy', 60_000, async () => (await ps('steady')).find((row) => row.state === 'running' && row.health === 'healthy'));
    await labRestart(lab, task.hostname);
    await waitFor(`${task.hostname} ready again`, 30_000, async () => {
      const nodes = await skiffJson<Array<{ hostname: string; status: string }>>(home, ['node', 'ls']);
      return nodes.find((node) => node.hostname === task.hostname)?.status === 'ready' ? true : undefined;
    });
    // Longer than `retries` intervals: the adopted task is probed again and stays running.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await ps('steady')).map((row) => [row.id, row.state, row.health, row.pid])).toEqual([[task.id, 'running', 'healthy', task.pid]]);
    const host = state.hosts.find((candidate) => candidate.name === task.hostname);
    if (host === undefined) throw new Error(`no lab host ${task.hostname}`);
    execFileSync('runc', ['--root', host.runcRoot, 'exec', task.containerId, 'rm', '/tmp/ok']);
    const rows = await waitFor('the adopted task failed as unhealthy and replaced', 60_000, async () => {
      const all = await ps('steady');
      const old = all.find((row) => row.id === task.id);
      return old?.state === 'failed' && all.some((row) => row.id !== task.id && row.slot === task.slot) ? all : undefined;
    });
    expect(rows.find((row) => row.id === task.id)).toMatchObject({ health: 'unhealthy', error: 'task: container unhealthy: health check exited with code 1' });
    expect((await skiff(home, ['service', 'rm', 'steady'])).code).toBe(0);
  });

  it('lab down leaves nothing behind', async () => {
    await labDown(lab);
    expect(await leftovers(lab)).toEqual([]);
  });
});
