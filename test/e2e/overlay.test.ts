/**
 * Issue 8 parts 3, 4 and 7 on a lab (1 manager, 2 workers; real runc, VXLAN and bridges in each
 * host's netns): tasks on one overlay network reach each other across hosts by address; the
 * embedded resolver answers tasks.SERVICE, SERVICE (the VIP), a service's network aliases and
 * task names, scoped per network; two networks cannot reach each other; an internal network has
 * no way out; a restarted skiffd keeps running tasks connected; and after service rm and network
 * rm no device, address or record is left on any host.
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labRestart, labUp, type LabHost, type LabState } from '../../deploy/lab/index.js';
import { running, skiff, skiffJson, type TaskRow, uniqueLab, waitFor } from './helpers.js';

const { name: lab, home } = uniqueLab('ovl');
let state: LabState;
afterAll(async () => {
  await labDown(lab).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

const DEADLINE_MS = 120_000;
/** busybox wget's own -T crashes Debian's busybox 1.35 (SIGSEGV): the caller's timeout bounds it instead. */
const WGET_TIMEOUT_MS = 6_000;

/** Runs a command; resolves with its exit code and output, never throws. */
function run(file: string, args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The host's busybox, run in the network namespace of the process `pid` (a container's init). */
const inNetns = (pid: number, args: string[], timeoutMs?: number) => run('nsenter', [`--net=/proc/${pid}/ns/net`, '/bin/busybox', ...args], timeoutMs);
/** The container's own busybox, in all its namespaces and root: names resolve through its resolv.conf. */
/** The host's `ip`, in the network namespace of the process `pid`. */
const ipIn = async (pid: number, args: string[]): Promise<string> => (await run('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', ...args])).stdout;
const inContainer = (pid: number, args: string[], timeoutMs?: number) => run('nsenter', ['-t', String(pid), '-n', '-m', '-u', '-i', '-p', '-r', '-w', '/bin/busybox', ...args], timeoutMs);

async function cli(args: string[]): Promise<string> {
  const result = await skiff(home, args);
  if (result.code !== 0) throw new Error(`skiff ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

const ps = (service: string): Promise<TaskRow[]> => skiffJson<TaskRow[]>(home, ['service', 'ps', service]);

/** Waits for `count` running tasks of `service` and returns them. */
function runningTasks(service: string, count: number): Promise<TaskRow[]> {
  return waitFor(`${count} running ${service} tasks`, DEADLINE_MS, async () => {
    const live = running(await ps(service));
    return live.length === count && live.every((row) => row.pid > 0) ? live : undefined;
  });
}

/** A task's address on the network whose subnet starts with `prefix` (bare). */
function overlayAddress(row: TaskRow, subnet: string): string {
  const prefix = subnet.split('.').slice(0, 3).join('.');
  const address = row.addresses.find((candidate) => candidate.startsWith(`${prefix}.`));
  if (address === undefined) throw new Error(`task ${row.name} has no address in ${subnet}: ${row.addresses.join(', ')}`);
  return address.split('/')[0] ?? '';
}

async function subnetOf(network: string): Promise<string> {
  return waitFor(`a subnet for ${network}`, DEADLINE_MS, async () => {
    const [inspected] = JSON.parse(await cli(['network', 'inspect', network])) as Array<{ allocation?: { subnet?: string } }>;
    return inspected?.allocation?.subnet || undefined;
  });
}

/** `nslookup NAME` against the container's resolver: the addresses of the answer. */
async function resolve(pid: number, name: string, server: string): Promise<string[]> {
  const result = await inNetns(pid, ['nslookup', '-type=a', name, server], 15_000);
  const answer = result.stdout.split(/\n\s*\n/).slice(1).join('\n');
  return [...answer.matchAll(/Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)/g)].map((match) => match[1] ?? '').sort();
}

const hostNamed = (name: string): LabHost => {
  const host = state.hosts.find((candidate) => candidate.name === name);
  if (host === undefined) throw new Error(`no lab host ${name}`);
  return host;
};

/** Overlay links (bridges, VXLAN devices, container veths) in a host's netns. */
async function overlayLinks(host: LabHost): Promise<string[]> {
  const shown = await run('ip', ['-n', host.netns, '-o', 'link', 'show']);
  return [...shown.stdout.matchAll(/^\d+:\s+((?:skb|skx|sv)[0-9a-f]+)[@:]/gm)].map((match) => match[1] ?? '');
}

describe('overlay networks on the lab', () => {
  let frontSubnet = '';
  let client: TaskRow;
  let web: TaskRow[] = [];
  let resolver = '';

  it('tasks on one overlay network reach each other across hosts by address', async () => {
    process.env['SKIFF_HOME'] = home;
    state = await labUp({ name: lab, managers: 1, workers: 2 });
    await cli(['network', 'create', 'front']);
    frontSubnet = await subnetOf('front');
    // Docker's long syntax: shop is one more name of web on front.
    await cli(['service', 'create', '--detach', '--name', 'web', '--replicas', '3', '--network', 'name=front,alias=shop', 'demo/web:v1']);
    await cli(['service', 'create', '--detach', '--name', 'client', '--network', 'front', '--constraint', 'node.hostname==h3', 'demo/web:v1']);
    web = await runningTasks('web', 3);
    [client] = (await runningTasks('client', 1)) as [TaskRow];
    expect(web.filter((row) => row.hostname !== client.hostname).length).toBeGreaterThan(0);
    for (const row of web) {
      const address = overlayAddress(row, frontSubnet);
      const page = await waitFor(`client reaching ${row.name} at ${address} (on ${row.hostname})`, 30_000, async () => {
        const result = await inNetns(client.pid, ['wget', '-q', '-O', '-', `http://${address}/`], WGET_TIMEOUT_MS);
        return result.code === 0 ? result.stdout : undefined;
      });
      expect(page).toContain('demo/web:v1');
      expect(page).toContain(row.id); // the page names the container's hostname: NAME.SLOT.TASKID
    }
    // Only the network's subnet goes over the overlay; eth0 keeps the default route.
    const routes = await ipIn(client.pid, ['route']);
    expect(routes).toMatch(/^default via \S+ dev eth0/m);
    expect(routes).toContain(`${frontSubnet} dev eth1`);
  });

  it('the embedded resolver answers tasks.web, web (the VIP), its alias shop and task names through the container resolv.conf', async () => {
    const resolvConf = readFileSync(`/proc/${client.pid}/root/etc/resolv.conf`, 'utf8');
    resolver = /^nameserver\s+(\S+)/m.exec(resolvConf)?.[1] ?? '';
    expect(resolver).toBe((/^default via (\S+)/m.exec(await ipIn(client.pid, ['route']))?.[1]));
    const webAddresses = web.map((row) => overlayAddress(row, frontSubnet)).sort();
    expect(await waitFor('tasks.web resolving to the 3 task addresses', 30_000, async () => {
      const found = await resolve(client.pid, 'tasks.web', resolver);
      return found.length === 3 ? found : undefined;
    })).toEqual(webAddresses);
    const [service] = JSON.parse(await cli(['service', 'inspect', 'web'])) as Array<{ endpoint?: { virtualIps?: Array<{ addr?: string }> } }>;
    const vip = service?.endpoint?.virtualIps?.[0]?.addr?.split('/')[0] ?? '';
    expect(vip).not.toBe('');
    expect(await resolve(client.pid, 'web', resolver)).toEqual([vip]);
    expect(await resolve(client.pid, 'shop', resolver)).toEqual([vip]);
    expect(await resolve(client.pid, 'tasks.shop', resolver)).toEqual(webAddresses);
    const first = web.find((row) => row.slot === 1) ?? web[0]!;
    expect(await resolve(client.pid, 'web.1', resolver)).toEqual([overlayAddress(first, frontSubnet)]);
    expect(await resolve(client.pid, `web.1.${first.id}`, resolver)).toEqual([overlayAddress(first, frontSubnet)]);
    // Through the container's own resolv.conf and libc: a task name works in a URL.
    const page = await inContainer(client.pid, ['wget', '-q', '-O', '-', 'http://web.1/'], WGET_TIMEOUT_MS);
    expect(page.code, page.stderr).toBe(0);
    expect(page.stdout).toContain('demo/web:v1');
  });

  it('two networks cannot reach each other, and names are scoped per network', async () => {
    await cli(['network', 'create', 'back']);
    await cli(['service', 'create', '--detach', '--name', 'other', '--network', 'back', '--endpoint-mode', 'dnsrr', '--constraint', 'node.hostname==h3', 'demo/web:v1']);
    const [other] = (await runningTasks('other', 1)) as [TaskRow];
    const backSubnet = await subnetOf('back');
    for (const row of web) {
      const result = await inNetns(other.pid, ['wget', '-q', '-O', '-', `http://${overlayAddress(row, frontSubnet)}/`], WGET_TIMEOUT_MS);
      expect(result.code, `other reached ${row.name} on front`).not.toBe(0);
    }
    // Nor over the host bridge: on one host, tasks on overlay networks have isolated ports there.
    const neighbour = web.find((row) => row.hostname === other.hostname);
    const bridgeAddress = neighbour?.addresses.find((address) => !address.includes('/'));
    if (bridgeAddress !== undefined) {
      const result = await inNetns(other.pid, ['wget', '-q', '-O', '-', `http://${bridgeAddress}/`], WGET_TIMEOUT_MS);
      expect(result.code, `other reached ${neighbour?.name ?? ''} over the host bridge`).not.toBe(0);
    }
    expect(await resolve(other.pid, 'tasks.web', resolver)).toEqual([]);
    expect(await resolve(client.pid, 'other', resolver)).toEqual([]);
    // dnsrr: the service name is its tasks' addresses, not a VIP.
    expect(await resolve(other.pid, 'other', resolver)).toEqual([overlayAddress(other, backSubnet)]);
  });

  it('an internal network has no way out, but its names resolve', async () => {
    await cli(['network', 'create', '--internal', 'priv']);
    await cli(['service', 'create', '--detach', '--name', 'vault', '--network', 'priv', '--replicas', '2', 'demo/web:v1']);
    const vault = await runningTasks('vault', 2);
    const privSubnet = await subnetOf('priv');
    const [one, two] = vault as [TaskRow, TaskRow];
    const host = hostNamed(one.hostname);
    const routes = await ipIn(one.pid, ['route']);
    expect(routes).not.toMatch(/^default/m);
    for (const target of [state.bridgeAddr.split('/')[0] ?? '', host.addr]) {
      const ping = await inNetns(one.pid, ['ping', '-c', '1', '-W', '2', target]);
      expect(ping.code, `internal task reached ${target}`).not.toBe(0);
    }
    const page = await waitFor('vault tasks reaching each other', 30_000, async () => {
      const result = await inNetns(one.pid, ['wget', '-q', '-O', '-', `http://${overlayAddress(two, privSubnet)}/`], WGET_TIMEOUT_MS);
      return result.code === 0 ? result.stdout : undefined;
    });
    expect(page).toContain('demo/web:v1');
    const gateway = /^nameserver\s+(\S+)/m.exec(readFileSync(`/proc/${one.pid}/root/etc/resolv.conf`, 'utf8'))?.[1] ?? '';
    expect(await resolve(one.pid, 'tasks.vault', gateway)).toEqual(vault.map((row) => overlayAddress(row, privSubnet)).sort());
  });

  it('a restarted skiffd keeps running tasks connected', async () => {
    await labRestart(lab, client.hostname);
    const [after] = (await runningTasks('client', 1)) as [TaskRow];
    expect(after.pid).toBe(client.pid);
    for (const row of web) {
      const result = await inNetns(client.pid, ['wget', '-q', '-O', '-', `http://${overlayAddress(row, frontSubnet)}/`], WGET_TIMEOUT_MS);
      expect(result.code, `after restart, client reaching ${row.name}`).toBe(0);
    }
    expect(await waitFor('the restarted resolver answering', 30_000, async () => {
      const found = await resolve(client.pid, 'tasks.web', resolver);
      return found.length === 3 ? found : undefined;
    })).toHaveLength(3);
    // The restarted agent still programs the network: a new web task is reachable and named.
    await cli(['service', 'scale', 'web=4']);
    web = await runningTasks('web', 4);
    for (const row of web) {
      const address = overlayAddress(row, frontSubnet);
      await waitFor(`client reaching ${row.name} at ${address} after the restart`, 30_000, async () => {
        const result = await inNetns(client.pid, ['wget', '-q', '-O', '-', `http://${address}/`], WGET_TIMEOUT_MS);
        return result.code === 0 ? true : undefined;
      });
    }
    expect(await waitFor('tasks.web naming the 4 tasks', 30_000, async () => {
      const found = await resolve(client.pid, 'tasks.web', resolver);
      return found.length === 4 ? found : undefined;
    })).toEqual(web.map((row) => overlayAddress(row, frontSubnet)).sort());
  });

  it('service rm and network rm leave no device, address or record on any host', async () => {
    for (const service of ['web', 'client', 'other', 'vault']) await cli(['service', 'rm', service]);
    await waitFor('every task gone', DEADLINE_MS, async () => {
      for (const service of ['web', 'client', 'other', 'vault']) {
        const result = await skiff(home, ['service', 'ps', service, '--format', 'json']);
        if (result.code === 0 && (JSON.parse(result.stdout) as TaskRow[]).some((row) => row.state === 'running')) return undefined;
      }
      return true;
    });
    // One network at a time: a call naming several removes those it can, so a retry must not name them again.
    for (const network of ['front', 'back', 'priv']) await waitFor(`network rm ${network} accepted`, DEADLINE_MS, async () => ((await skiff(home, ['network', 'rm', network])).code === 0 ? true : undefined));
    await waitFor('no overlay device left on any host', DEADLINE_MS, async () => {
      for (const host of state.hosts) if ((await overlayLinks(host)).length > 0) return undefined;
      return true;
    });
    for (const host of state.hosts) {
      const addresses = (await run('ip', ['-n', host.netns, '-o', '-4', 'addr', 'show'])).stdout;
      for (const subnet of [frontSubnet]) expect(addresses).not.toContain(subnet.split('.').slice(0, 3).join('.'));
      const neighbours = (await run('ip', ['-n', host.netns, 'neigh', 'show'])).stdout;
      expect(neighbours).not.toContain(frontSubnet.split('.').slice(0, 3).join('.'));
      const recordDir = join(host.dataDir, 'runtime', 'network', 'overlay');
      expect(readdirSync(recordDir).filter((name) => name.endsWith('.json'))).toEqual([]);
    }
  });
});
