/**
 * Issue 6 on the lab: a killed worker's tasks run elsewhere, and when it comes back its stale
 * containers are stopped, so no slot runs twice; drain moves every task off a node.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labKill, labStart, labUp, leftovers, type LabState } from '../../deploy/lab/index.js';
import { running, skiff, skiffJson, uniqueLab, waitFor, type TaskRow } from './helpers.js';

const lab = uniqueLab('sched');
afterAll(async () => {
  await labDown(lab.name).catch(() => undefined);
  rmSync(lab.home, { recursive: true, force: true });
});

const ps = (): Promise<TaskRow[]> => skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'web']);

/** Containers runc says are running on `host`. */
function runningContainers(state: LabState, host: string): string[] {
  const target = state.hosts.find((candidate) => candidate.name === host);
  if (target === undefined) throw new Error(`no host ${host}`);
  const listed = JSON.parse(execFileSync('runc', ['--root', target.runcRoot, 'list', '--format', 'json'], { encoding: 'utf8' }) || '[]') as Array<{ id: string; status: string }> | null;
  return (listed ?? []).filter((container) => container.status === 'running').map((container) => container.id);
}

function slotsRunningOnce(rows: TaskRow[]): boolean {
  const slots = running(rows).map((row) => row.slot);
  return new Set(slots).size === slots.length;
}

describe('self-healing on the lab', () => {
  let state: LabState;

  it('a killed worker\'s tasks run elsewhere', async () => {
    process.env['SKIFF_HOME'] = lab.home;
    state = await labUp({ name: lab.name, managers: 1, workers: 2 });
    const created = await skiff(lab.home, ['service', 'create', '--name', 'web', '--replicas', '6', 'demo/web:v1']);
    expect(created.stderr).toBe('');
    const before = await waitFor('six running tasks with some on h3', 60_000, async () => {
      const rows = await ps();
      return running(rows).length === 6 && running(rows).some((row) => row.hostname === 'h3') ? rows : undefined;
    });
    expect(slotsRunningOnce(before)).toBe(true);
    await labKill(lab.name, 'h3');
    const after = await waitFor('six running tasks, none on h3', 60_000, async () => {
      const rows = await ps();
      const live = running(rows);
      return live.length === 6 && live.every((row) => row.hostname !== 'h3') ? rows : undefined;
    });
    expect(slotsRunningOnce(after)).toBe(true);
  });

  it('the worker comes back: its stale containers stop, and no slot runs twice', async () => {
    await labStart(lab.name, 'h3');
    await waitFor('h3 ready and no container left running on it', 60_000, async () => {
      const nodes = await skiffJson<Array<{ hostname: string; status: string }>>(lab.home, ['node', 'ls']);
      const ready = nodes.find((node) => node.hostname === 'h3')?.status === 'ready';
      const onH3 = running(await ps()).filter((row) => row.hostname === 'h3').map((row) => row.containerId);
      return ready && runningContainers(state, 'h3').every((id) => onH3.includes(id)) ? true : undefined;
    });
    const rows = await ps();
    expect(running(rows)).toHaveLength(6);
    expect(slotsRunningOnce(rows)).toBe(true);
  });

  it('drain moves every task off the node', async () => {
    const drained = await skiff(lab.home, ['node', 'update', '--availability', 'drain', 'h2']);
    expect(drained.stderr).toBe('');
    await waitFor('six running tasks, none on h2, and no container running on h2', 60_000, async () => {
      const live = running(await ps());
      return live.length === 6 && live.every((row) => row.hostname !== 'h2') && runningContainers(state, 'h2').length === 0 ? true : undefined;
    });
    expect(slotsRunningOnce(await ps())).toBe(true);
  });

  it('a task whose constraint no node meets stays pending with the reason, and is placed when a node is relabelled', async () => {
    const created = await skiff(lab.home, ['service', 'create', '--detach', '--name', 'edge', '--constraint', 'node.labels.zone==edge', 'demo/web:v1']);
    expect(created.stderr).toBe('');
    const pending = await waitFor('the edge task pending with a reason', 30_000, async () => {
      const rows = await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'edge']);
      return rows[0]?.state === 'pending' && rows[0].error !== '' ? rows[0] : undefined;
    });
    expect(pending.error).toMatch(/^no suitable node: .*constraint node\.labels\.zone==edge not met on \d nodes/);
    expect((await skiff(lab.home, ['node', 'update', '--label-add', 'zone=edge', 'h3'])).code).toBe(0);
    const placed = await waitFor('the edge task running on h3', 60_000, async () => running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'edge']))[0]);
    expect(placed.hostname).toBe('h3');
    // The label moves: the task follows it (the constraint enforcer).
    expect((await skiff(lab.home, ['node', 'update', '--label-add', 'zone=edge', 'h1'])).code).toBe(0);
    expect((await skiff(lab.home, ['node', 'update', '--label-rm', 'zone', 'h3'])).code).toBe(0);
    const moved = await waitFor('the edge task running on h1 only', 60_000, async () => {
      const live = running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'edge']));
      return live.length === 1 && live[0]?.hostname === 'h1' ? live[0] : undefined;
    });
    expect(moved.slot).toBe(placed.slot);
  });

  it('a global service runs one task per eligible node and follows nodes joining and leaving', async () => {
    const agentTasks = async (): Promise<string[]> => running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'agent'])).map((row) => row.hostname).sort();
    // Without --detach the CLI waits for a task on each eligible node (h2 is drained: it gets none).
    const created = await skiff(lab.home, ['service', 'create', '--mode', 'global', '--name', 'agent', 'demo/web:v1']);
    expect(created.stderr).toBe('');
    expect(created.stdout).toContain('agent: 2/2 running');
    expect(created.stdout).toContain('agent: converged');
    expect(await agentTasks()).toEqual(['h1', 'h3']);
    expect((await skiff(lab.home, ['node', 'update', '--availability', 'active', 'h2'])).code).toBe(0);
    await waitFor('agent on h1, h2 and h3', 60_000, async () => ((await agentTasks()).join() === 'h1,h2,h3' ? true : undefined));
    const listed = await skiffJson<Array<{ name: string; mode: string; replicas: string }>>(lab.home, ['service', 'ls']);
    expect(listed.find((row) => row.name === 'agent')).toMatchObject({ mode: 'global', replicas: '3/3' });
    await labKill(lab.name, 'h3');
    expect((await skiff(lab.home, ['node', 'rm', '--force', 'h3'])).stderr).toBe('');
    await waitFor('agent on h1 and h2 only', 60_000, async () => ((await agentTasks()).join() === 'h1,h2' ? true : undefined));
    const rows = await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'agent']);
    expect(rows.filter((row) => row.desiredState === 'running').map((row) => row.hostname).sort()).toEqual(['h1', 'h2']);
  });

  it('comes down without leftovers', async () => {
    await labDown(lab.name);
    expect(await leftovers(lab.name)).toEqual([]);
  });
});
