/**
 * `make demo` minus the installs: deploy/demo.sh on a fresh lab ends with 3 running tasks of
 * `web` on at least 2 hosts, prints how to reach them, and a second run changes nothing.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labExec, leftovers } from '../../deploy/lab/index.js';
import { repoRoot, running, skiffJson, type TaskRow, uniqueLab } from './helpers.js';

const { name: lab, home } = uniqueLab('demo');

function runDemo(): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync('bash', [join(repoRoot, 'deploy/demo.sh')], {
    env: { ...process.env, SKIFF_HOME: home, SKIFF_LAB: lab },
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

afterAll(async () => {
  await labDown(lab).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

describe('demo', () => {
  it('demo ends with 3 web tasks running on at least 2 hosts, reachable as printed', async () => {
    const first = runDemo();
    expect(first.code, first.stderr).toBe(0);
    const tasks = running(await skiffJson<TaskRow[]>(home, ['service', 'ps', 'web']));
    expect(tasks).toHaveLength(3);
    expect(new Set(tasks.map((task) => task.hostname)).size).toBeGreaterThanOrEqual(2);
    for (const task of tasks) {
      expect(first.stdout).toContain(`lab exec --name ${lab} ${task.hostname} -- busybox wget -qO- http://${task.addresses[0]}/`);
      const page = await labExec(lab, task.hostname, ['busybox', 'wget', '-qO-', `http://${task.addresses[0]}/`]);
      expect(page.stdout).toContain('demo/web:v1');
    }
  });

  it('demo run again is idempotent: same lab, same 3 tasks', async () => {
    const before = running(await skiffJson<TaskRow[]>(home, ['service', 'ps', 'web'])).map((task) => task.id).sort();
    const second = runDemo();
    expect(second.code, second.stderr).toBe(0);
    const after = running(await skiffJson<TaskRow[]>(home, ['service', 'ps', 'web'])).map((task) => task.id).sort();
    expect(after).toEqual(before);
  });

  it('demo lab comes down without leftovers', async () => {
    await labDown(lab);
    expect(await leftovers(lab)).toEqual([]);
  });
});
