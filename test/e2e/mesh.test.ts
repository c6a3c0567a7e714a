/**
 * Issue 8 parts 5-7 on a lab (1 manager, 2 workers): a client task reaching `web` by name goes
 * through the VIP to all 3 web tasks; a published port answers at every host's address, the
 * manager's too, which runs no web task (the routing mesh); a scale-down under a continuous
 * client, through the VIP and through the mesh, fails no request; mode=host and
 * --ingress-traffic local answer only where a task runs (the task leaves every backend
 * set, then drains, before its stop signal); a VIP without a ready task refuses at once; after
 * service rm and network rm no device, nftables table or overlay address is left on any host.
 */
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labUp, type LabState } from '../../deploy/lab/index.js';
import { running, skiff, skiffJson, type TaskRow, uniqueLab, waitFor } from './helpers.js';
import { MESH_ROUTE_PROTO } from '../../agent/network/ingress/ingress-mesh.js';

const { name: lab, home } = uniqueLab('mesh');
let state: LabState;
afterAll(async () => {
  await labDown(lab).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

const DEADLINE_MS = 120_000;
const WGET_TIMEOUT_MS = 6_000;

function run(file: string, args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The container's own busybox in all its namespaces: names resolve through its resolv.conf. */
const inContainer = (pid: number, args: string[], timeoutMs?: number) => run('nsenter', ['-t', String(pid), '-n', '-m', '-u', '-i', '-p', '-r', '-w', '/bin/busybox', ...args], timeoutMs);

async function cli(args: string[]): Promise<string> {
  const result = await skiff(home, args);
  if (result.code !== 0) throw new Error(`skiff ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

const ps = (service: string): Promise<TaskRow[]> => skiffJson<TaskRow[]>(home, ['service', 'ps', service]);

function runningTasks(service: string, count: number): Promise<TaskRow[]> {
  return waitFor(`${count} running ${service} tasks`, DEADLINE_MS, async () => {
    const live = running(await ps(service));
    return live.length === count && live.every((row) => row.pid > 0 && (row.health === '' || row.health === 'healthy')) ? live : undefined;
  });
}

/** One GET from this (the root) namespace; resolves with the body, rejects on any failure. */
function get(url: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => (response.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${response.statusCode ?? 0}`))));
      response.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The task id a demo/web page names (its hostname is NAME.SLOT.TASKID). */
function servedBy(page: string, tasks: readonly TaskRow[]): string | undefined {
  return tasks.find((row) => page.includes(row.id))?.id;
}

describe('VIP load balancing and the routing mesh on the lab', () => {
  let web: TaskRow[] = [];
  let client: TaskRow;

  it('a client reaching `web` by name gets answers from all 3 web tasks through the VIP', async () => {
    process.env['SKIFF_HOME'] = home;
    state = await labUp({ name: lab, managers: 1, workers: 2 });
    await cli(['network', 'create', 'front']);
    await cli([
      'service', 'create', '--detach', '--name', 'web', '--replicas', '3', '--network', 'front', '--publish', '8080:80',
      '--constraint', 'node.role==worker', '--health-tcp', '80', '--health-interval', '1s', '--health-timeout', '1s', 'demo/web:v1',
    ]);
    await cli(['service', 'create', '--detach', '--name', 'client', '--network', 'front', '--constraint', 'node.hostname==h3', 'demo/web:v1']);
    web = await runningTasks('web', 3);
    [client] = (await runningTasks('client', 1)) as [TaskRow];
    const seen = await waitFor('answers from all 3 web tasks through http://web/', 60_000, (() => {
      const ids = new Set<string>();
      return async () => {
        const result = await inContainer(client.pid, ['wget', '-q', '-O', '-', 'http://web/'], WGET_TIMEOUT_MS);
        const id = result.code === 0 ? servedBy(result.stdout, web) : undefined;
        if (id !== undefined) ids.add(id);
        return ids.size === 3 ? ids : undefined;
      };
    })(), 50);
    expect([...seen].sort()).toEqual(web.map((row) => row.id).sort());
    // The rules live in the client's own namespace, one table.
    const rules = await run('nsenter', [`--net=/proc/${client.pid}/ns/net`, 'nft', 'list', 'table', 'ip', 'skiff_lb']);
    expect(rules.stdout).toMatch(/dnat to numgen random mod 3 map/);
  });

  it('the published port answers at every host, the one without a web task too, from all tasks', async () => {
    const manager = state.hosts.find((host) => host.role === 'manager');
    expect(web.some((row) => row.hostname === manager?.name)).toBe(false);
    for (const host of state.hosts) {
      const ids = await waitFor(`port 8080 of ${host.name} answering from every web task`, 60_000, (() => {
        const found = new Set<string>();
        return async () => {
          const page = await get(`http://${host.addr}:8080/`).catch(() => '');
          const id = servedBy(page, web);
          if (id !== undefined) found.add(id);
          return found.size === 3 ? found : undefined;
        };
      })(), 20);
      expect(ids.size).toBe(3);
    }
    // The host without a task routes to each task directly (one /32 route per remote task through
    // its host), so it alone picks the task; the other hosts' views play no part.
    const routes = (await run('ip', ['-n', manager?.netns ?? '', '-4', 'route', 'show', 'proto', String(MESH_ROUTE_PROTO)])).stdout;
    for (const row of web) {
      const owner = state.hosts.find((host) => host.name === row.hostname);
      expect(routes, `route to web task on ${row.hostname}`).toMatch(new RegExp(`^\\S+ via ${(owner?.addr ?? '?').replaceAll('.', '\\.')} `, 'm'));
    }
    expect(routes.trim().split('\n')).toHaveLength(3);
  });

  it('mode=host and --ingress-traffic local answer only on the host with a task', async () => {
    await cli(['service', 'create', '--detach', '--name', 'pinned', '--publish', 'published=9090,target=80,mode=host', '--constraint', 'node.hostname==h2', 'demo/web:v1']);
    // The local service also serves /cgi-bin/ip: the client address its httpd sees (REMOTE_ADDR).
    const cgi = String.raw`mkdir -p /www/cgi-bin && printf '%s\n' '#!/bin/sh' 'printf "Content-Type: text/plain\r\n\r\n%s\n" "$REMOTE_ADDR"' > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && hostname > /www/index.html && exec httpd -f -p 80 -h /www`;
    await cli(['service', 'create', '--detach', '--name', 'local', '--publish', '8181:80', '--ingress-traffic', 'local', '--constraint', 'node.hostname==h2', '--entrypoint', 'sh', 'demo/web:v1', '-c', cgi]);
    const [pinned] = (await runningTasks('pinned', 1)) as [TaskRow];
    const [local] = (await runningTasks('local', 1)) as [TaskRow];
    const h2 = state.hosts.find((host) => host.name === 'h2');
    expect(await waitFor('h2:9090 answering from the pinned task', 30_000, async () => servedBy(await get(`http://${h2?.addr ?? ''}:9090/`).catch(() => ''), [pinned]))).toBe(pinned.id);
    expect(await waitFor('h2:8181 answering from the local task', 30_000, async () => servedBy(await get(`http://${h2?.addr ?? ''}:8181/`).catch(() => ''), [local]))).toBe(local.id);
    for (const host of state.hosts.filter((candidate) => candidate.name !== 'h2')) {
      for (const port of [9090, 8181]) await expect(get(`http://${host.addr}:${port}/`, 3_000), `${host.name}:${port}`).rejects.toThrow();
    }
    // The client's own address reaches the task: nothing masqueraded it (the lab's bridge is where this test's requests come from).
    expect((await get(`http://${h2?.addr ?? ''}:8181/cgi-bin/ip`)).trim().replace(/^\[::ffff:(.*)\]$/, '$1')).toBe(state.bridgeAddr);
    const [inspected] = JSON.parse(await cli(['service', 'inspect', 'local'])) as Array<{ spec?: { labels?: Record<string, string> } }>;
    expect(inspected?.spec?.labels?.['skiff.ingress.traffic']).toBe('local');
  });

  it('a scale-down under continuous clients (VIP and mesh) fails no request', async () => {
    // Through the VIP: a loop in the client container until a stop file appears.
    const loop = 'ok=0; fail=0; while [ ! -f /tmp/stop-loop ]; do if wget -q -O /dev/null http://web/; then ok=$((ok+1)); else fail=$((fail+1)); fi; done; echo "$ok $fail"';
    const vipRun = inContainer(client.pid, ['sh', '-c', loop], 120_000);
    // Through the mesh: requests to the manager's address (no web task there) from here.
    const manager = state.hosts.find((host) => host.role === 'manager');
    let meshOk = 0;
    const meshFailures: string[] = [];
    let stopMesh = false;
    const meshRun = (async () => {
      while (!stopMesh) {
        try {
          await get(`http://${manager?.addr ?? ''}:8080/`);
          meshOk += 1;
        } catch (error) {
          meshFailures.push(String(error));
        }
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await cli(['service', 'scale', 'web=2']);
    const kept = await waitFor('2 web tasks wanted', DEADLINE_MS, async () => {
      const rows = (await ps('web')).filter((row) => row.desiredState === 'running');
      return rows.length === 2 ? rows : undefined;
    });
    const removed = web.find((row) => !kept.some((other) => other.id === row.id));
    expect(removed).toBeDefined();
    await waitFor(`the removed task's process ${removed?.pid ?? 0} gone`, DEADLINE_MS, async () => (existsSync(`/proc/${removed?.pid ?? 0}`) ? undefined : true));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    writeFileSync(`/proc/${client.pid}/root/tmp/stop-loop`, '');
    stopMesh = true;
    await meshRun;
    const counts = (await vipRun).stdout.trim().split(' ').map(Number);
    expect(counts[0], 'VIP requests that succeeded').toBeGreaterThan(20);
    expect(counts[1], 'VIP requests that failed').toBe(0);
    expect(meshOk).toBeGreaterThan(20);
    expect(meshFailures).toEqual([]);
  });

  it('a VIP without a ready task refuses a connection at once; the table is one lookup in the nat hook, no filter hook', async () => {
    await cli(['service', 'create', '--detach', '--name', 'idle', '--replicas', '0', '--network', 'front', 'demo/web:v1']);
    const [idle] = JSON.parse(await cli(['service', 'inspect', 'idle'])) as Array<{ endpoint?: { virtualIps?: Array<{ addr?: string }> } }>;
    const vip = idle?.endpoint?.virtualIps?.[0]?.addr?.split('/')[0] ?? '';
    expect(vip).not.toBe('');
    const rules = await waitFor(`the client's table naming ${vip}`, DEADLINE_MS, async () => {
      const listed = (await run('nsenter', [`--net=/proc/${client.pid}/ns/net`, 'nft', 'list', 'table', 'ip', 'skiff_lb'])).stdout;
      return listed.includes(`${vip} : goto`) ? listed : undefined;
    });
    expect(rules).toMatch(/ip daddr vmap \{/);
    expect(rules).not.toMatch(/type filter/);
    expect(rules.match(/ hook /g)).toHaveLength(1);
    // A TCP connect from the client's namespace (the host's node): reset at once, not a timeout.
    const connect = `const s = require('net').connect(80, '${vip}'); const t = Date.now(); s.on('connect', () => { console.log('connected'); process.exit(0); }); s.on('error', (e) => { console.log(e.code, Date.now() - t); process.exit(0); }); setTimeout(() => { console.log('timeout'); process.exit(0); }, 5000);`;
    const result = await run('nsenter', [`--net=/proc/${client.pid}/ns/net`, process.execPath, '-e', connect]);
    const [code, elapsedMs] = result.stdout.trim().split(' ');
    expect(code, JSON.stringify(result)).toBe('ECONNREFUSED');
    expect(Number(elapsedMs), 'a refusal, not a timeout').toBeLessThan(1_000);
  });

  it('service rm and network rm leave no device, nftables table or overlay address on any host', async () => {
    const [network] = JSON.parse(await cli(['network', 'inspect', 'front'])) as Array<{ allocation?: { subnet?: string } }>;
    const prefix = (network?.allocation?.subnet ?? '').split('.').slice(0, 3).join('.');
    expect(prefix).not.toBe('');
    for (const service of ['web', 'client', 'pinned', 'local', 'idle']) await cli(['service', 'rm', service]);
    await waitFor('network rm accepted', DEADLINE_MS, async () => ((await skiff(home, ['network', 'rm', 'front'])).code === 0 ? true : undefined));
    await waitFor('no overlay device and no skiff nftables table on any host', DEADLINE_MS, async () => {
      for (const host of state.hosts) {
        const links = (await run('ip', ['-n', host.netns, '-o', 'link', 'show'])).stdout;
        if (/^\d+:\s+(skb|skx|sv)[0-9a-f]+[@:]/m.test(links)) return undefined;
        const tables = (await run('ip', ['netns', 'exec', host.netns, 'nft', 'list', 'tables'])).stdout;
        if (tables.includes('skiff_')) return undefined;
        if ((await run('ip', ['-n', host.netns, '-4', 'route', 'show', 'proto', String(MESH_ROUTE_PROTO)])).stdout.trim() !== '') return undefined;
      }
      return true;
    });
    for (const host of state.hosts) {
      expect((await run('ip', ['-n', host.netns, '-o', '-4', 'addr', 'show'])).stdout).not.toContain(`${prefix}.`);
      expect((await run('ip', ['-n', host.netns, 'neigh', 'show'])).stdout).not.toContain(`${prefix}.`);
      await expect(get(`http://${host.addr}:8080/`, 2_000)).rejects.toThrow();
    }
  });
});
