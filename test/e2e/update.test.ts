/**
 * Issue 9, the rolling updater on the lab: `skiff service update` rolls a new image out slot by
 * slot (start-first waits for health before an old task stops), a version that never becomes
 * healthy rolls back by itself, `pause` stops with the reason and a new update resumes, and
 * `skiff service rollback` goes back. (Zero failed requests through the ingress mesh is tested
 * once the mesh exists, issue #8.)
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labUp, leftovers } from '../../deploy/lab/index.js';
import { running, skiff, skiffJson, uniqueLab, waitFor, type TaskRow } from './helpers.js';

const lab = uniqueLab('upd');
afterAll(async () => {
  await labDown(lab.name).catch(() => undefined);
  rmSync(lab.home, { recursive: true, force: true });
});

interface ServiceJson {
  spec: { taskTemplate: { container: { image: string } } };
  specVersion: number | string;
  updateStatus?: { state: string; message: string };
}

const inspect = async (name: string): Promise<ServiceJson> => (await skiffJson<ServiceJson[]>(lab.home, ['service', 'inspect', name]))[0]!;
const images = async (name: string): Promise<string[]> => running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', name])).map((row) => row.image).sort();

describe('rolling updates on the lab', () => {
  it('rolls a new image out start-first, never running fewer healthy tasks than asked', async () => {
    process.env['SKIFF_HOME'] = lab.home;
    await labUp({ name: lab.name, managers: 1, workers: 2 });
    const created = await skiff(lab.home, [
      'service', 'create', '--name', 'web', '--replicas', '4', '--health-http', '80/index.html', '--health-interval', '300ms',
      '--update-parallelism', '2', '--update-order', 'start-first', '--update-monitor', '1s', '--update-failure-action', 'rollback', 'demo/web:v1',
    ]);
    expect(created.stderr).toBe('');
    expect(await images('web')).toEqual(Array(4).fill('demo/web:v1'));

    let fewest = 4;
    let sawBothVersions = false;
    const watching = (async () => {
      for (;;) {
        const rows = running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'web']));
        const healthy = rows.filter((row) => row.health === 'healthy');
        fewest = Math.min(fewest, healthy.length);
        if (new Set(healthy.map((row) => row.image)).size === 2) sawBothVersions = true;
        if (rows.length === 4 && rows.every((row) => row.image === 'demo/web:v2')) return;
      }
    })();
    const updated = await skiff(lab.home, ['service', 'update', '--image', 'demo/web:v2', 'web'], 180_000);
    expect(updated.stderr, updated.stdout).toBe('');
    expect(updated.code).toBe(0);
    expect(updated.stdout).toContain('updating:');
    await watching;
    expect(fewest).toBe(4);
    expect(sawBothVersions).toBe(true);
    expect((await inspect('web')).updateStatus).toMatchObject({ state: 'completed' });
    const ls = await skiffJson<Array<{ name: string; updateStatus: string }>>(lab.home, ['service', 'ls']);
    expect(ls.find((row) => row.name === 'web')?.updateStatus).toBe('completed');
  });

  it('a version that never becomes healthy rolls back by itself, and the CLI says so', async () => {
    // A "version" whose health check can never pass: its tasks never count as running.
    const bad = await skiff(lab.home, ['service', 'update', '--health-http', '81/index.html', '--health-retries', '2', 'web'], 180_000);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/did not complete: rollback_/);
    await waitFor('rollback completed', 120_000, async () => ((await inspect('web')).updateStatus?.state === 'rollback_completed' ? true : undefined));
    await waitFor('four v2 tasks again', 60_000, async () => {
      const rows = running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'web']));
      return rows.length === 4 && rows.every((row) => row.image === 'demo/web:v2' && row.health === 'healthy') ? true : undefined;
    });
  });

  it('pause stops with the reason, and a new update resumes', async () => {
    const paused = await skiff(lab.home, ['service', 'update', '--update-failure-action', 'pause', '--image', 'demo/web:nope', 'web'], 180_000);
    expect(paused.code).not.toBe(0);
    const status = (await inspect('web')).updateStatus;
    expect(status?.state).toBe('paused');
    expect(status?.message).toMatch(/^update paused: task \w+ failed: /);
    // The old tasks keep serving while paused (start-first).
    expect(await images('web')).toEqual(Array(4).fill('demo/web:v2'));
    const resumed = await skiff(lab.home, ['service', 'update', '--image', 'demo/web:v1', 'web'], 180_000);
    expect(resumed.stderr).toBe('');
    expect((await inspect('web')).updateStatus?.state).toBe('completed');
    expect(await images('web')).toEqual(Array(4).fill('demo/web:v1'));
  });

  it('skiff service rollback goes back to the previous spec', async () => {
    expect((await skiff(lab.home, ['service', 'update', '--image', 'demo/web:v2', 'web'], 180_000)).stderr).toBe('');
    expect(await images('web')).toEqual(Array(4).fill('demo/web:v2'));
    const rolled = await skiff(lab.home, ['service', 'rollback', 'web'], 180_000);
    expect(rolled.stderr).toBe('');
    expect(rolled.code).toBe(0);
    const after = await inspect('web');
    expect(after.spec.taskTemplate.container.image).toMatch(/^demo\/web:v1(@sha256:[0-9a-f]{64})?$/);
    expect(after.updateStatus?.state).toBe('rollback_completed');
    expect(await images('web')).toEqual(Array(4).fill('demo/web:v1'));
  });

  it('blue-green starts green beside blue, switches when green is healthy, and removes blue after the hold; switch moves traffic back', async () => {
    const created = await skiff(lab.home, ['service', 'create', '--name', 'bg', '--replicas', '2', '--health-http', '80/index.html', '--health-interval', '300ms', '--update-strategy', 'blue-green', '--bluegreen-hold', '4s', 'demo/web:v1']);
    expect(created.stderr).toBe('');
    const updated = await skiff(lab.home, ['service', 'update', '--image', 'demo/web:v2', 'bg'], 180_000);
    expect(updated.stderr).toBe('');
    expect(updated.stdout).toContain('traffic switched to green');
    const during = running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'bg']));
    expect(during.map((row) => row.image).sort()).toEqual(['demo/web:v1', 'demo/web:v1', 'demo/web:v2', 'demo/web:v2']);
    expect((await skiffJson<Array<{ activeColor: string }>>(lab.home, ['service', 'inspect', 'bg']))[0]?.activeColor).toBe('green');
    await waitFor('blue removed after the hold', 60_000, async () => ((await inspect('bg')).updateStatus?.state === 'completed' ? true : undefined));
    await waitFor('only green runs', 30_000, async () => ((await images('bg')).join() === 'demo/web:v2,demo/web:v2' ? true : undefined));

    // Back to v1 (blue this time), and by hand back to green during the hold: v2 stays.
    const again = await skiff(lab.home, ['service', 'update', '--image', 'demo/web:v1', '--bluegreen-hold', '20s', 'bg'], 180_000);
    expect(again.stdout).toContain('traffic switched to blue');
    const switched = await skiff(lab.home, ['service', 'switch', 'bg', 'green']);
    expect(switched.stderr).toBe('');
    expect((await skiffJson<Array<{ activeColor: string }>>(lab.home, ['service', 'inspect', 'bg']))[0]?.activeColor).toBe('green');
    await waitFor('the hold ends with green kept', 60_000, async () => ((await inspect('bg')).updateStatus?.state === 'rollback_completed' ? true : undefined));
    await waitFor('only v2 runs', 30_000, async () => ((await images('bg')).join() === 'demo/web:v2,demo/web:v2' ? true : undefined));
    expect((await skiff(lab.home, ['service', 'switch', 'bg', 'blue'])).stderr).toContain('only during the hold of a blue-green update');
  });

  it('canary starts K new tasks beside the old ones; promote finishes the update', async () => {
    expect((await skiff(lab.home, ['service', 'create', '--name', 'can', '--replicas', '3', 'demo/web:v1'])).stderr).toBe('');
    const canary = await skiff(lab.home, ['service', 'update', '--update-strategy', 'canary', '--canary-replicas', '1', '--image', 'demo/web:v2', 'can'], 180_000);
    expect(canary.stderr).toBe('');
    expect(canary.stdout).toContain('canary: 1/1 new-version tasks serve beside the old ones');
    expect(await images('can')).toEqual(['demo/web:v1', 'demo/web:v1', 'demo/web:v1', 'demo/web:v2']);
    const promoted = await skiff(lab.home, ['service', 'promote', 'can'], 180_000);
    expect(promoted.stderr).toBe('');
    expect((await inspect('can')).updateStatus?.state).toBe('completed');
    expect(await images('can')).toEqual(['demo/web:v2', 'demo/web:v2', 'demo/web:v2']);
  });

  it('comes down without leftovers', async () => {
    await labDown(lab.name);
    expect(await leftovers(lab.name)).toEqual([]);
  });
});
