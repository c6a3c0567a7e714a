/**
 * Issue 6, rebalancing on the lab: after a worker comes back, `skiff service rebalance` spreads
 * a service over it again, one task at a time and start-first (never fewer tasks running than
 * asked for); `--rebalance auto` does it without being asked.
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labKill, labStart, labUp, leftovers } from '../../deploy/lab/index.js';
import { running, skiff, skiffJson, uniqueLab, waitFor, type TaskRow } from './helpers.js';

const lab = uniqueLab('rebal');
afterAll(async () => {
  await labDown(lab.name).catch(() => undefined);
  rmSync(lab.home, { recursive: true, force: true });
});

const perHost = async (service: string): Promise<Record<string, number>> => {
  const counts: Record<string, number> = {};
  for (const row of running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', service]))) counts[row.hostname] = (counts[row.hostname] ?? 0) + 1;
  return counts;
};

describe('rebalancing on the lab', () => {
  it('services pile onto the remaining nodes while a worker is down', async () => {
    process.env['SKIFF_HOME'] = lab.home;
    await labUp({ name: lab.name, managers: 1, workers: 2 });
    expect((await skiff(lab.home, ['service', 'create', '--name', 'web', '--replicas', '6', 'demo/web:v1'])).stderr).toBe('');
    expect((await skiff(lab.home, ['service', 'create', '--name', 'auto', '--replicas', '3', '--rebalance', 'auto', 'demo/web:v1'])).stderr).toBe('');
    await labKill(lab.name, 'h3');
    await waitFor('web and auto running without h3', 60_000, async () => {
      const web = await perHost('web');
      const auto = await perHost('auto');
      return (web['h1'] ?? 0) + (web['h2'] ?? 0) === 6 && (auto['h1'] ?? 0) + (auto['h2'] ?? 0) === 3 ? true : undefined;
    });
    await labStart(lab.name, 'h3');
    await waitFor('h3 ready', 30_000, async () => ((await skiffJson<Array<{ hostname: string; status: string }>>(lab.home, ['node', 'ls'])).find((node) => node.hostname === 'h3')?.status === 'ready' ? true : undefined));
  });

  it('--rebalance auto spreads a service onto the node that came back', async () => {
    const spread = await waitFor('auto spread over h1, h2, h3', 60_000, async () => {
      const counts = await perHost('auto');
      return counts['h1'] === 1 && counts['h2'] === 1 && counts['h3'] === 1 ? counts : undefined;
    });
    expect(spread).toEqual({ h1: 1, h2: 1, h3: 1 });
  });

  it('without auto nothing moves until `skiff service rebalance`, which never runs fewer tasks than asked', async () => {
    expect((await perHost('web'))['h3'] ?? 0).toBe(0);
    const asked = await skiff(lab.home, ['service', 'rebalance', 'web']);
    expect(asked.stderr).toBe('');
    let fewest = 6;
    await waitFor('web spread 2/2/2', 90_000, async () => {
      const counts = await perHost('web');
      fewest = Math.min(fewest, Object.values(counts).reduce((sum, count) => sum + count, 0));
      return counts['h1'] === 2 && counts['h2'] === 2 && counts['h3'] === 2 ? true : undefined;
    }, 100);
    expect(fewest).toBe(6);
  });

  it('comes down without leftovers', async () => {
    await labDown(lab.name);
    expect(await leftovers(lab.name)).toEqual([]);
  });
});
