/**
 * Issue 9, zero downtime through the routing mesh: a client requests the published port without
 * pause across each update (at least 1,000 requests) and checks every response for its version.
 * Rolling (start-first, health checks), blue/green (an atomic switch, and back), a version that
 * never becomes healthy (rolls back by itself), and canaries taking their share.
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labUp, leftovers, readLabState } from '../../deploy/lab/index.js';
import { running, skiff, skiffJson, uniqueLab, waitFor, type TaskRow } from './helpers.js';

const lab = uniqueLab('zdt');
afterAll(async () => {
  await labDown(lab.name).catch(() => undefined);
  rmSync(lab.home, { recursive: true, force: true });
});

const PORT = 8080;
const MIN_REQUESTS = 1000;

interface Sample {
  version: string;
  ok: boolean;
  error: string;
}

/** Requests `url` back to back until stopped; every answer's version (v1, v2, …) or its failure. */
function client(url: string): { samples: Sample[]; stop: () => Promise<Sample[]> } {
  const samples: Sample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(5_000), headers: { connection: 'close' } });
        const body = await response.text();
        const version = /demo\/web:(v\d+)/.exec(body)?.[1] ?? '';
        samples.push({ version, ok: response.ok && version !== '', error: response.ok ? '' : `HTTP ${response.status}` });
      } catch (error) {
        samples.push({ version: '', ok: false, error: String(error) });
      }
    }
  })();
  return {
    samples,
    stop: async () => {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

/**
 * Runs `update` while a client requests the port without pause, from before it starts until at
 * least MIN_REQUESTS requests were made (on this machine some 800-2,400 fall inside the update).
 */
async function underLoad(url: string, update: () => Promise<void>): Promise<Sample[]> {
  const load = client(url);
  await waitFor('the client has answers', 30_000, async () => (load.samples.length > 20 ? true : undefined), 50);
  const before = load.samples.length;
  await update();
  // The client was answered throughout the update, not only around it.
  expect(load.samples.length - before).toBeGreaterThan(100);
  await waitFor(`${MIN_REQUESTS} requests`, 120_000, async () => (load.samples.length >= MIN_REQUESTS ? true : undefined), 100);
  return load.stop();
}

const failures = (samples: Sample[]): Sample[] => samples.filter((sample) => !sample.ok);
/** The versions in order with repeats collapsed: ['v1', 'v2'] for an atomic switch. */
const runs = (samples: Sample[]): string[] => samples.map((sample) => sample.version).filter((version, index, all) => index === 0 || version !== all[index - 1]);

describe('zero-downtime updates through the routing mesh', () => {
  let url = '';

  it('a published service answers on every lab host', async () => {
    process.env['SKIFF_HOME'] = lab.home;
    await labUp({ name: lab.name, managers: 1, workers: 2 });
    const created = await skiff(lab.home, [
      'service', 'create', '--name', 'web', '--replicas', '3', '-p', `${PORT}:80`, '--health-http', '80/index.html', '--health-interval', '300ms',
      '--update-order', 'start-first', '--update-parallelism', '1', '--update-monitor', '500ms', '--update-failure-action', 'rollback', 'demo/web:v1',
    ]);
    expect(created.stderr).toBe('');
    const state = await readLabState(lab.name);
    if (state === undefined) throw new Error(`lab ${lab.name} has no state`);
    for (const host of state.hosts) {
      const answer = await waitFor(`web answers on ${host.addr}`, 30_000, async () => {
        const response = await fetch(`http://${host.addr}:${PORT}/`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
        return response?.ok === true ? response.text() : undefined;
      });
      expect(answer).toContain('demo/web:v1');
    }
    url = `http://${state.hosts[0]!.addr}:${PORT}/`;
  });

  it('a rolling update v1 -> v2 (start-first, health checks) fails no request', async () => {
    const samples = await underLoad(url, async () => {
      const updated = await skiff(lab.home, ['service', 'update', '--image', 'demo/web:v2', 'web'], 180_000);
      expect(updated.stderr).toBe('');
    });
    expect(failures(samples)).toEqual([]);
    expect(samples.length).toBeGreaterThanOrEqual(MIN_REQUESTS);
    expect(samples.at(-1)?.version).toBe('v2');
  });

  it('a version that never becomes healthy rolls back by itself with no failed request', async () => {
    const samples = await underLoad(url, async () => {
      const bad = await skiff(lab.home, ['service', 'update', '--image', 'demo/web:v3', '--health-retries', '2', 'web'], 180_000);
      expect(bad.stderr).toMatch(/rollback/);
    });
    expect(failures(samples)).toEqual([]);
    expect(new Set(samples.map((sample) => sample.version))).toEqual(new Set(['v2']));
    const [after] = await skiffJson<Array<{ updateStatus?: { state: string }; spec?: { taskTemplate?: { container?: { image?: string } } } }>>(lab.home, ['service', 'inspect', 'web']);
    expect(after?.updateStatus?.state).toBe('rollback_completed');
    expect(after?.spec?.taskTemplate?.container?.image).toMatch(/demo\/web:v2/);
  });

  it('blue/green switches to green and back with no failed request', async () => {
    const back = await skiff(lab.home, ['service', 'update', '--image', 'demo/web:v1', '--update-strategy', 'blue-green', '--bluegreen-hold', '30s', 'web'], 180_000);
    expect(back.stderr).toBe('');
    await waitFor('v1 serves', 60_000, async () => ((await skiffJson<Array<{ updateStatus?: { state: string } }>>(lab.home, ['service', 'inspect', 'web']))[0]?.updateStatus?.state === 'completed' ? true : undefined));
    const samples = await underLoad(url, async () => {
      const updated = await skiff(lab.home, ['service', 'update', '--image', 'demo/web:v2', 'web'], 180_000);
      expect(updated.stdout).toContain('traffic switched to');
      // Back to the old (v1) color during the hold: the same one-step change.
      const active = (await skiffJson<Array<{ activeColor?: string }>>(lab.home, ['service', 'inspect', 'web']))[0]?.activeColor ?? 'blue';
      const switched = await skiff(lab.home, ['service', 'switch', 'web', active === 'blue' ? 'green' : 'blue']);
      expect(switched.stderr).toBe('');
    });
    expect(failures(samples)).toEqual([]);
    // Atomic both ways: every answer before the switch is v1, every one after it v2, and after the
    // switch back v1 again; never one of the other set in between.
    expect(runs(samples)).toEqual(['v1', 'v2', 'v1']);
  });

  it('canaries take roughly their share of the requests until promoted', async () => {
    // The hold ends with the old (v1) set kept and the previous spec restored.
    await waitFor('the hold ended', 90_000, async () => ((await skiffJson<Array<{ updateStatus?: { state: string } }>>(lab.home, ['service', 'inspect', 'web']))[0]?.updateStatus?.state === 'rollback_completed' ? true : undefined));
    await waitFor('three v1 tasks', 60_000, async () => {
      const rows = running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'web']));
      return rows.length === 3 && rows.every((row) => row.image === 'demo/web:v1') ? true : undefined;
    });
    expect((await skiff(lab.home, ['service', 'update', '--update-strategy', 'canary', '--canary-replicas', '1', '--image', 'demo/web:v2', 'web'], 180_000)).stderr).toBe('');
    const load = client(url);
    await waitFor('300 requests', 60_000, async () => (load.samples.length >= 300 ? true : undefined), 100);
    const samples = await load.stop();
    expect(failures(samples)).toEqual([]);
    const share = samples.filter((sample) => sample.version === 'v2').length / samples.length;
    // One canary beside three old tasks: a quarter, give or take.
    expect(share).toBeGreaterThan(0.1);
    expect(share).toBeLessThan(0.45);
    // Rolling back removes the canaries: the old tasks alone serve again.
    const rolled = await skiff(lab.home, ['service', 'rollback', 'web'], 180_000);
    expect(rolled.stderr).toBe('');
    await waitFor('only v1 serves', 60_000, async () => {
      const rows = running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'web']));
      return rows.length === 3 && rows.every((row) => row.image === 'demo/web:v1') ? true : undefined;
    });
  });

  it('pause stops the update with the reason and a new update resumes it, with no failed request', async () => {
    const samples = await underLoad(url, async () => {
      const paused = await skiff(lab.home, ['service', 'update', '--update-strategy', 'rolling', '--update-failure-action', 'pause', '--image', 'demo/web:nope', 'web'], 180_000);
      expect(paused.code).not.toBe(0);
      const [inspected] = await skiffJson<Array<{ updateStatus?: { state: string; message: string } }>>(lab.home, ['service', 'inspect', 'web']);
      expect(inspected?.updateStatus?.state).toBe('paused');
      expect(inspected?.updateStatus?.message).toMatch(/^update paused: task \w+ failed: /);
      const resumed = await skiff(lab.home, ['service', 'update', '--image', 'demo/web:v2', 'web'], 180_000);
      expect(resumed.stderr).toBe('');
    });
    expect(failures(samples)).toEqual([]);
    expect(samples.at(-1)?.version).toBe('v2');
  });

  it('comes down without leftovers', async () => {
    await labDown(lab.name);
    expect(await leftovers(lab.name)).toEqual([]);
  });
});
