/**
 * Issue 7 points 5 and 7 on the lab (2 managers, 2 workers, real runc and conmon): `skiff service
 * logs` shows the lines of three tasks on three hosts, each with its task prefix, honours --tail
 * and follows new lines with -f until it is interrupted; `skiff task exec` runs a command in a
 * task on any host and exits with the command's exit code; both work through the follower manager
 * too (it relays them to the leader), and exec refuses a task that does not exist. The stock
 * `docker service logs` shows the same lines through the Docker API.
 */
import { execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labUp, type LabState } from '../../deploy/lab/index.js';
import { docker, dockerEnv, repoRoot, running, skiff, skiffJson, type TaskRow, uniqueLab, waitFor } from './helpers.js';

const lab = uniqueLab('logs');
let state: LabState;
let tasks: TaskRow[];
/** Each task prints its hostname (its task name) once, then a numbered tick every 200 ms. */
const script = 'echo "hello from $(hostname)"; echo "to stderr $(hostname)" >&2; i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done';

beforeAll(async () => {
  process.env['SKIFF_HOME'] = lab.home;
  // Two managers: the follower's local socket shows that these calls work through any manager.
  state = await labUp({ name: lab.name, managers: 2, workers: 2 });
  const created = await skiff(lab.home, ['service', 'create', '--name', 'chat', '--replicas', '3', '--max-replicas-per-node', '1', '--entrypoint', 'sh', 'demo/web:v1', '-c', script]);
  expect(created.stderr).toBe('');
  tasks = await waitFor('three running tasks on three hosts', 90_000, async () => {
    const rows = running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'chat']));
    return rows.length === 3 && new Set(rows.map((row) => row.hostname)).size === 3 ? rows : undefined;
  });
}, 180_000);

afterAll(async () => {
  await labDown(lab.name).catch(() => undefined);
  rmSync(lab.home, { recursive: true, force: true });
});

describe('skiff service logs', () => {
  it('shows lines from the three tasks on three hosts, each with its task prefix, stderr on stderr', async () => {
    const result = await waitFor('hello lines of all three tasks', 30_000, async () => {
      const logs = await skiff(lab.home, ['service', 'logs', 'chat']);
      return logs.code === 0 && tasks.every((task) => logs.stdout.includes(`hello from chat.${task.slot}.`)) ? logs : undefined;
    });
    for (const task of tasks) {
      const prefix = `chat.${task.slot}.${task.id.slice(0, 12)}@${task.hostname}`;
      expect(result.stdout).toContain(`${prefix}    | hello from chat.${task.slot}.${task.id}`);
      expect(result.stderr).toContain(`${prefix}    | to stderr chat.${task.slot}.${task.id}`);
      expect(result.stdout).not.toContain('to stderr');
    }
    expect(new Set(tasks.map((task) => task.hostname)).size).toBe(3);
  });

  it('the stock docker CLI shows the same lines through the Docker API, with Docker\'s task prefix', async () => {
    const socket = join(dirname(state.hosts[0]!.controlSocket), 'docker.sock');
    const result = await waitFor('hello lines of all three tasks through docker', 30_000, async () => {
      const logs = await docker(socket, join(lab.home, 'docker-config'), ['service', 'logs', 'chat']);
      return logs.code === 0 && tasks.every((task) => logs.stdout.includes(`hello from chat.${task.slot}.`)) ? logs : undefined;
    });
    for (const task of tasks) {
      const line = result.stdout.split('\n').find((candidate) => candidate.includes(`| hello from chat.${task.slot}.${task.id}`));
      expect(line, result.stdout).toMatch(new RegExp(`^chat\\.${task.slot}\\.${task.id.slice(0, 12)}@${task.hostname} +\\| `));
      expect(result.stderr).toContain(`| to stderr chat.${task.slot}.${task.id}`);
    }
    expect(result.stdout).not.toContain('to stderr');
    const tail = await docker(socket, join(lab.home, 'docker-config'), ['service', 'logs', '--tail', '1', '--timestamps', 'chat']);
    expect(tail.code, tail.stderr).toBe(0);
    const lines = (tail.stdout + tail.stderr).trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d{2}-\d{2}T\S+ chat\.\d\.\w+@h\d +\| /);
    // -f: lines written after the call started keep coming until the CLI is interrupted.
    const child = spawn('docker', ['service', 'logs', '-f', '--tail', '0', 'chat'], { env: dockerEnv(socket, join(lab.home, 'docker-config')), stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    child.stdout.on('data', (chunk: Buffer) => (followed += chunk.toString()));
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
    try {
      await waitFor('new ticks from all three tasks through docker -f', 20_000, async () => (tasks.every((task) => followed.includes(`chat.${task.slot}.${task.id.slice(0, 12)}@`)) ? true : undefined));
      expect(followed).not.toContain('hello from');
    } finally {
      child.kill('SIGINT');
      await exited;
    }
  });

  it('--tail 1 prints one line per task; --since in the future prints none', async () => {
    const tail = await skiff(lab.home, ['service', 'logs', '--tail', '1', 'chat']);
    expect(tail.code).toBe(0);
    const lines = (tail.stdout + tail.stderr).trim().split('\n');
    // One line per task from the end (stdout or stderr alike): three lines, one per task.
    expect(lines).toHaveLength(3);
    for (const task of tasks) expect(lines.filter((line) => line.startsWith(`chat.${task.slot}.`))).toHaveLength(1);
    const future = await skiff(lab.home, ['service', 'logs', '--since', new Date(Date.now() + 3_600_000).toISOString(), 'chat']);
    expect(future.code).toBe(0);
    expect(future.stdout).toBe('');
    const task = await skiff(lab.home, ['service', 'logs', '--tail', '2', '--timestamps', `chat.${tasks[0]!.slot}`]);
    expect(task.code).toBe(0);
    const taskLines = task.stdout.trim().split('\n');
    expect(taskLines.every((line) => line.startsWith(`chat.${tasks[0]!.slot}.`))).toBe(true);
    expect(taskLines[0]).toMatch(/ \| \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+(Z|[+-]\d{2}:\d{2}) tick \d+$/);
  });

  it('-f prints a line written after it started, and stops when interrupted', async () => {
    const child = spawn(join(repoRoot, 'bin/skiff'), ['service', 'logs', '-f', '--tail', '0', 'chat'], { env: { ...process.env, SKIFF_HOME: lab.home }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      // Ticks written after the call started reach it, from every task.
      await waitFor('ticks from all three tasks while following', 20_000, async () => (tasks.every((task) => stdout.includes(`chat.${task.slot}.${task.id.slice(0, 12)}@`)) ? true : undefined));
      const marker = `marker-${Date.now()}`;
      const exec = await skiff(lab.home, ['task', 'exec', `chat.${tasks[1]!.slot}`, '--', 'sh', '-c', `echo ${marker} > /proc/1/fd/1`]);
      expect(exec.code).toBe(0);
      await waitFor('the marker line', 20_000, async () => (stdout.includes(`chat.${tasks[1]!.slot}.${tasks[1]!.id.slice(0, 12)}@${tasks[1]!.hostname}    | ${marker}`) ? true : undefined));
      // A task that starts while following is followed too, from its first line.
      const scaled = await skiff(lab.home, ['service', 'scale', 'chat=4', '--detach']);
      expect(scaled.stderr).toBe('');
      const added = await waitFor('a fourth running task', 90_000, async () => running(await skiffJson<TaskRow[]>(lab.home, ['service', 'ps', 'chat'])).find((row) => !tasks.some((task) => task.id === row.id)));
      await waitFor('the new task\'s first line while following', 30_000, async () => (stdout.includes(`chat.${added.slot}.${added.id.slice(0, 12)}@${added.hostname}    | hello from chat.${added.slot}.${added.id}`) ? true : undefined));
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    // The cluster still answers requests afterwards (the cancelled streams freed their slots).
    const after = await skiff(lab.home, ['service', 'logs', '--tail', '1', 'chat']);
    expect(after.code).toBe(0);
    expect((await skiff(lab.home, ['service', 'scale', 'chat=3'])).stderr).toBe('');
  });

  it('names the missing service', async () => {
    const missing = await skiff(lab.home, ['service', 'logs', 'nosuch']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('nosuch');
  });
});

describe('through the follower manager', () => {
  it('logs and exec work on the local socket of the manager that does not lead', async () => {
    const nodes = await skiffJson<Array<{ hostname: string; managerStatus: string }>>(lab.home, ['node', 'ls']);
    const follower = await waitFor('a follower manager', 30_000, async () => nodes.find((node) => node.managerStatus === 'reachable')?.hostname);
    const socket = state.hosts.find((host) => host.name === follower)?.controlSocket;
    expect(socket).toBeDefined();
    const host = ['--host', `unix://${socket!}`];
    const logs = await skiff(lab.home, [...host, 'service', 'logs', '--tail', '1', 'chat']);
    expect(logs.stderr).toBe('');
    expect(logs.code).toBe(0);
    for (const task of tasks) expect(logs.stdout).toContain(`chat.${task.slot}.${task.id.slice(0, 12)}@${task.hostname}    | tick `);
    const exec = await skiff(lab.home, [...host, 'task', 'exec', 'chat.2', '--', 'sh', '-c', 'echo via follower; exit 3']);
    expect(exec.stdout).toBe('via follower\n');
    expect(exec.code).toBe(3);
  });
});

describe('skiff task exec', () => {
  it('returns the output and the exit code of the command', async () => {
    const result = await skiff(lab.home, ['task', 'exec', 'chat.1', '--', 'sh', '-c', 'echo hi; echo oops >&2; exit 7']);
    expect(result.stdout).toBe('hi\n');
    expect(result.stderr).toBe('oops\n');
    expect(result.code).toBe(7);
  });

  it('runs in a task on a worker host, with env, workdir and stdin', async () => {
    // Three tasks on three of four hosts, two of them managers: one task runs on a worker.
    const workers = state.hosts.filter((host) => host.role === 'worker').map((host) => host.name);
    const onWorker = tasks.find((task) => workers.includes(task.hostname));
    expect(onWorker).toBeDefined();
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(join(repoRoot, 'bin/skiff'), ['task', 'exec', '-i', '-e', 'GREETING=hello', '-w', '/tmp', onWorker!.id, '--', 'sh', '-c', 'read line; echo "$GREETING $line from $(hostname) in $(pwd)"'], {
        env: { ...process.env, SKIFF_HOME: lab.home },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end('world\n');
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`hello world from chat.${onWorker!.slot}.${onWorker!.id} in /tmp\n`);
    expect(result.code).toBe(0);
  });

  it('a CLI that goes away ends the exec: the process in the container is killed', async () => {
    const marker = String(4000 + Math.floor(Math.random() * 1000));
    const sleeping = (): string[] => {
      try {
        return execFileSync('pgrep', ['-f', `^sleep ${marker}$`], { encoding: 'utf8' }).trim().split('\n').filter((line) => line !== '');
      } catch {
        return []; // pgrep exits 1 when nothing matches
      }
    };
    const child = spawn(join(repoRoot, 'bin/skiff'), ['task', 'exec', 'chat.3', '--', 'sleep', marker], { env: { ...process.env, SKIFF_HOME: lab.home }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('close', resolve));
    await waitFor('the exec\'d sleep running', 20_000, async () => (sleeping().length === 1 ? true : undefined));
    child.kill('SIGKILL');
    await exited;
    await waitFor('the exec\'d sleep gone', 20_000, async () => (sleeping().length === 0 ? true : undefined));
  });

  it('fails with a clear message for a task that does not run or does not exist', async () => {
    const missing = await skiff(lab.home, ['task', 'exec', 'chat.9', '--', 'true']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('chat.9');
    const empty = await skiff(lab.home, ['task', 'exec', 'chat.1']);
    expect(empty.code).not.toBe(0);
  });
});
