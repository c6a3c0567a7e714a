/**
 * Issue 3, end to end on a real lab (1 manager, 2 workers, real runc): a replicated service runs
 * as real containers on several hosts, heals, scales, survives daemon restarts, and refuses bad
 * input without changing what is stored. The stock `docker` CLI sees the same cluster through the
 * manager's Docker API socket.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labExec, labRestart, leftovers, labUp } from '../../deploy/lab/index.js';
import type { LabState } from '../../deploy/lab/index.js';
import { NAMESPACE_KINDS, docker, namespacesOf, running, skiff, skiffJson, type TaskRow, uniqueLab, waitFor } from './helpers.js';

const { name: lab, home } = uniqueLab('fnd');
let state: LabState;

interface NodeRow {
  id: string;
  hostname: string;
  role: string;
  status: string;
  availability: string;
  addr: string;
  managerStatus: string;
}
interface ServiceRow {
  id: string;
  name: string;
  mode: string;
  replicas: string;
  image: string;
}

const ps = (service = 'web'): Promise<TaskRow[]> => skiffJson<TaskRow[]>(home, ['service', 'ps', service]);
const hostOf = (hostname: string) => {
  const host = state.hosts.find((candidate) => candidate.name === hostname);
  if (host === undefined) throw new Error(`no lab host ${hostname}`);
  return host;
};
const countByHost = (rows: TaskRow[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const row of rows) counts[row.hostname] = (counts[row.hostname] ?? 0) + 1;
  return counts;
};
/** Waits until exactly `replicas` tasks run and no task that should stop is still running. */
const converged = (replicas: number) =>
  waitFor(`web to run ${replicas} tasks`, 60_000, async () => {
    const rows = await ps();
    const stillStopping = rows.some((row) => row.desiredState !== 'running' && row.state === 'running');
    return running(rows).length === replicas && !stillStopping ? rows : undefined;
  });

beforeAll(async () => {
  process.env['SKIFF_HOME'] = home;
  state = await labUp({ name: lab, managers: 1, workers: 2 });
  await waitFor('3 ready nodes', 30_000, async () => {
    const nodes = await skiffJson<NodeRow[]>(home, ['node', 'ls']);
    return nodes.filter((node) => node.status === 'ready').length === 3 ? nodes : undefined;
  });
});

afterAll(async () => {
  await labDown(lab).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

describe('foundation on the lab', () => {
  it('node ls lists every lab host by name with the issue-3 fields', async () => {
    const nodes = await skiffJson<NodeRow[]>(home, ['node', 'ls']);
    expect(nodes.map((node) => node.hostname).sort()).toEqual(['h1', 'h2', 'h3']);
    for (const node of nodes) expect(Object.keys(node).sort()).toEqual(['addr', 'availability', 'hostname', 'id', 'managerStatus', 'role', 'status']);
    const manager = nodes.find((node) => node.hostname === 'h1');
    expect(manager).toMatchObject({ role: 'manager', status: 'ready', availability: 'active', managerStatus: 'leader', addr: hostOf('h1').addr });
    expect(nodes.find((node) => node.hostname === 'h2')).toMatchObject({ role: 'worker', managerStatus: '' });
  });

  it('lab commands without --name act on the lab of the current CLI context', async () => {
    const env = { ...process.env };
    delete env['SKIFF_LAB'];
    const result = await skiff(home, ['lab', 'status', '--format', 'json'], 30_000, env);
    expect(result.code, result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as { name: string }).name).toBe(lab);
  });

  it('service create runs 3 replicas as runc containers in their own namespaces on at least 2 hosts, each serving the demo page', async () => {
    const created = await skiff(home, ['service', 'create', '--name', 'web', '--replicas', '3', 'demo/web:v1']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('web: converged');
    const rows = running(await ps());
    expect(rows).toHaveLength(3);
    expect(new Set(rows.map((row) => row.hostname)).size).toBeGreaterThanOrEqual(2);
    const own = namespacesOf('self');
    for (const row of rows) {
      expect(Object.keys(row).sort()).toEqual(['addresses', 'containerId', 'desiredState', 'error', 'exitCode', 'health', 'hostname', 'id', 'image', 'name', 'nodeId', 'pid', 'slot', 'state'].sort());
      const runcState = JSON.parse(execFileSync('runc', ['--root', hostOf(row.hostname).runcRoot, 'state', row.containerId], { encoding: 'utf8' })) as { status: string; pid: number };
      expect(runcState).toMatchObject({ status: 'running', pid: row.pid });
      const namespaces = namespacesOf(row.pid);
      for (const kind of NAMESPACE_KINDS) expect(namespaces[kind], kind).not.toBe(own[kind]);
      expect(row.addresses).toHaveLength(1);
      const page = await labExec(lab, row.hostname, ['busybox', 'wget', '-qO-', `http://${row.addresses[0]}/`]);
      expect(page.code, page.stderr).toBe(0);
      expect(page.stdout).toContain('demo/web:v1');
      expect(page.stdout).toContain(`web.${row.slot}.${row.id}`);
    }
    const services = await skiffJson<ServiceRow[]>(home, ['service', 'ls']);
    expect(services).toEqual([{ id: expect.any(String), name: 'web', mode: 'replicated', replicas: '3/3', image: 'demo/web:v1', updateStatus: '', updateMessage: '' }]);
  });

  it('the stock docker CLI sees the same nodes, service and running tasks through the manager\'s Docker API socket', async () => {
    const socket = join(dirname(hostOf('h1').controlSocket), 'docker.sock');
    const run = async (...args: string[]): Promise<string[]> => {
      const result = await docker(socket, join(home, 'docker-config'), args);
      expect(result.code, `docker ${args.join(' ')}: ${result.stderr}`).toBe(0);
      return result.stdout.split('\n').map((line) => line.trimEnd()).filter((line) => line !== '').sort();
    };
    expect(await run('node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}')).toEqual(['h1 Ready Leader', 'h2 Ready', 'h3 Ready']);
    expect(await run('service', 'ls', '--format', '{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}')).toEqual(['web replicated 3/3 demo/web:v1']);
    const skiffRows = running(await ps());
    const dockerRows = await run('service', 'ps', 'web', '--filter', 'desired-state=running', '--format', '{{.Name}} {{.Node}} {{.CurrentState}}');
    expect(dockerRows.map((row) => row.split(' ').slice(0, 3).join(' '))).toEqual(skiffRows.map((row) => `web.${row.slot} ${row.hostname} Running`).sort());
  });

  it('a manager restart keeps every service and task, and does not restart running containers', async () => {
    const before = running(await ps());
    await labRestart(lab, 'h1');
    const after = await waitFor('the restarted manager to answer with 3 running tasks', 30_000, async () => {
      const rows = running(await ps());
      return rows.length === 3 ? rows : undefined;
    });
    const identity = (rows: TaskRow[]) => rows.map((row) => `${row.id}/${row.containerId}/${row.pid}`).sort();
    expect(identity(after)).toEqual(identity(before));
    expect((await skiffJson<ServiceRow[]>(home, ['service', 'ls'])).map((service) => service.name)).toEqual(['web']);
  });

  it('a worker restart adopts its containers: same ids, same pids, no duplicates', async () => {
    const worker = running(await ps()).find((row) => row.hostname !== 'h1');
    if (worker === undefined) throw new Error('no task on a worker');
    const host = hostOf(worker.hostname);
    const containersBefore = execFileSync('runc', ['--root', host.runcRoot, 'list', '-q'], { encoding: 'utf8' }).trim().split('\n').sort();
    await labRestart(lab, worker.hostname);
    await waitFor(`${worker.hostname} to be ready again`, 30_000, async () => {
      const nodes = await skiffJson<NodeRow[]>(home, ['node', 'ls']);
      return nodes.find((node) => node.hostname === worker.hostname)?.status === 'ready' ? true : undefined;
    });
    // The agent re-reports its tasks in a new session; give the manager a moment to apply it.
    const rows = await waitFor('3 running tasks after the worker restart', 30_000, async () => {
      const current = running(await ps());
      return current.length === 3 ? current : undefined;
    });
    const same = rows.find((row) => row.id === worker.id);
    expect(same).toMatchObject({ containerId: worker.containerId, pid: worker.pid, hostname: worker.hostname });
    const containersAfter = execFileSync('runc', ['--root', host.runcRoot, 'list', '-q'], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(containersAfter).toEqual(containersBefore);
  });

  it('a container killed from outside shows failed with its exit code within 10 s and is replaced', async () => {
    const victim = running(await ps())[0];
    if (victim === undefined) throw new Error('no running task');
    process.kill(victim.pid, 'SIGKILL');
    const failed = await waitFor('the killed task to show failed', 10_000, async () => (await ps()).find((row) => row.id === victim.id && row.state === 'failed'));
    expect(failed).toMatchObject({ exitCode: 137, error: 'task: non-zero exit (137)' });
    const replacement = await waitFor('a replacement in the same slot', 30_000, async () =>
      running(await ps()).find((row) => row.slot === victim.slot && row.id !== victim.id),
    );
    expect(replacement.pid).not.toBe(victim.pid);
    expect(running(await ps())).toHaveLength(3);
  });

  it('scale to 6 and back to 1 converges, and scale-down removes from the busiest hosts first', async () => {
    expect((await skiff(home, ['service', 'scale', 'web=6'])).code).toBe(0);
    expect(Object.values(countByHost(running(await converged(6)))).sort()).toEqual([2, 2, 2]);
    expect((await skiff(home, ['service', 'scale', 'web=4'])).code).toBe(0);
    const four = countByHost(running(await converged(4)));
    expect(Object.values(four).sort()).toEqual([1, 1, 2]);
    expect((await skiff(home, ['service', 'scale', 'web=3'])).code).toBe(0);
    // From 2/1/1 only the busiest host may lose a task.
    expect(countByHost(running(await converged(3)))).toEqual({ h1: 1, h2: 1, h3: 1 });
    const down = await skiff(home, ['service', 'scale', 'web=1']);
    expect(down.code, down.stderr).toBe(0);
    expect(running(await converged(1))).toHaveLength(1);
  });

  it('an image that does not exist is rejected with the cause, the CLI exits non-zero, and the service stays', async () => {
    const result = await skiff(home, ['service', 'create', '--name', 'ghost', 'demo/nope:v9']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/rejected: cannot pull image "demo\/nope:v9": manifest unknown/);
    const rows = await ps('ghost');
    expect(rows[0]).toMatchObject({ state: 'rejected', image: 'demo/nope:v9' });
    expect((await skiffJson<ServiceRow[]>(home, ['service', 'ls'])).map((service) => service.name).sort()).toEqual(['ghost', 'web']);
    expect((await skiff(home, ['service', 'rm', 'ghost'])).code).toBe(0);
  });

  it.each([
    [['--name', 'bad', '--replicas', '-1'], /--replicas.*non-negative integer/],
    [['--name', 'bad', '--replicas', '2.5'], /--replicas.*non-negative integer/],
    [['--name', ''], /name must not be empty/],
    [['--name', 'web'], /service "web".*already exists/],
  ])('bad input %j gets a clear error and changes nothing stored', async (flags, message) => {
    const before = await skiffJson<ServiceRow[]>(home, ['service', 'ls']);
    const result = await skiff(home, ['service', 'create', ...flags, 'demo/web:v1']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
    const after = await skiffJson<ServiceRow[]>(home, ['service', 'ls']);
    expect(after.map(({ id, name, image }) => ({ id, name, image }))).toEqual(before.map(({ id, name, image }) => ({ id, name, image })));
  });

  it('docker service create and update without --detach wait until the tasks run, then docker service rm removes them', async () => {
    const socket = join(dirname(hostOf('h1').controlSocket), 'docker.sock');
    const config = join(home, 'docker-config');
    const created = await docker(socket, config, ['service', 'create', '--name', 'dk', '--replicas', '2', 'demo/web:v1'], 120_000);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/verify: Service (\S+ )?converged/);
    // Converged means running, as skiff sees it too.
    expect(running(await ps('dk')).map((row) => row.image)).toEqual(['demo/web:v1', 'demo/web:v1']);
    const updated = await docker(socket, config, ['service', 'update', '--image', 'demo/web:v2', 'dk'], 120_000);
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toMatch(/verify: Service (\S+ )?converged/);
    const rows = running(await ps('dk'));
    expect(rows.map((row) => row.image)).toEqual(['demo/web:v2', 'demo/web:v2']);
    expect((await docker(socket, config, ['service', 'rm', 'dk'])).code).toBe(0);
    await waitFor('dk containers to be removed', 30_000, async () => {
      for (const row of rows) {
        if (execFileSync('runc', ['--root', hostOf(row.hostname).runcRoot, 'list', '-q'], { encoding: 'utf8' }).includes(row.containerId)) return undefined;
      }
      return true;
    });
  });

  it('service rm removes the service and its containers', async () => {
    const rows = running(await ps());
    expect((await skiff(home, ['service', 'rm', 'web'])).code).toBe(0);
    await waitFor('web containers to be removed', 30_000, async () => {
      for (const row of rows) {
        const listed = execFileSync('runc', ['--root', hostOf(row.hostname).runcRoot, 'list', '-q'], { encoding: 'utf8' });
        if (listed.includes(row.containerId)) return undefined;
      }
      return true;
    });
    expect(await skiffJson<ServiceRow[]>(home, ['service', 'ls'])).toEqual([]);
  });

  it('lab down leaves no namespace, link, mount, cgroup, process or file behind', async () => {
    await labDown(lab);
    expect(await leftovers(lab)).toEqual([]);
  });
});
