/**
 * VIP load balancing vs direct (issue #8 part 5). A lab of 1 manager and 1 worker; network
 * `front`; service `web` (1 task, on h2); clients on h2 (same host) and h1 (across VXLAN). From
 * each client's network namespace, small HTTP GETs (a new connection each) for --seconds with
 * --concurrency loops: to the task's overlay address directly, and to the VIP (nftables DNAT in
 * the client's namespace). Prints one JSON line with the rates, latencies and VIP/direct ratios;
 * with iperf3 installed, also bulk TCP over VXLAN vs same host through the VIP.
 *
 *   npm run bench:vip -- [--seconds 4] [--concurrency 4]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hostFacts, withBenchLab } from './lab-bench.js';
import { progress, runOrThrow, timedRun } from './bench-support.js';
import { skiffBinary } from './skiff-start.js';

interface Row {
  name: string;
  hostname: string;
  pid: number;
  addresses: string[];
  state: string;
}

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, concurrency: { type: 'string', default: '4' } } });
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const LOAD = join(import.meta.dirname, 'vip-load.js');

async function main(): Promise<void> {
  const result = await withBenchLab({ prefix: 'vb', managers: 1, workers: 1 }, async (bench) => {
    const skiff = (args: string[]): Promise<string> => runOrThrow(`skiff ${args.join(' ')}`, skiffBinary(), args, { env: bench.env, timeoutMs: 120_000 });
    const tasks = async (service: string, count: number): Promise<Row[]> => {
      for (let deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 300))) {
        const rows = (JSON.parse(await skiff(['service', 'ps', service, '--format', 'json'])) as Row[]).filter((row) => row.state === 'running' && row.pid > 0);
        if (rows.length === count) return rows;
      }
      throw new Error(`cannot run the benchmark: ${count} tasks of ${service} not running within 120 s`);
    };
    await skiff(['network', 'create', 'front']);
    await skiff(['service', 'create', '--detach', '--name', 'web', '--network', 'front', '--constraint', 'node.hostname==h2', 'demo/web:v1']);
    await skiff(['service', 'create', '--detach', '--name', 'near', '--network', 'front', '--constraint', 'node.hostname==h2', 'demo/web:v1']);
    await skiff(['service', 'create', '--detach', '--name', 'far', '--network', 'front', '--constraint', 'node.hostname==h1', 'demo/web:v1']);
    const [web] = (await tasks('web', 1)) as [Row];
    const [near] = (await tasks('near', 1)) as [Row];
    const [far] = (await tasks('far', 1)) as [Row];
    const [service] = JSON.parse(await skiff(['service', 'inspect', 'web'])) as Array<{ endpoint?: { virtualIps?: Array<{ addr?: string }> } }>;
    const vip = service?.endpoint?.virtualIps?.[0]?.addr?.split('/')[0] ?? '';
    const direct = web.addresses.find((address) => address.includes('/'))?.split('/')[0] ?? '';
    if (vip === '' || direct === '') throw new Error('cannot run the benchmark: no VIP or task address');
    const measure = async (client: Row, target: string): Promise<Record<string, number>> => {
      // Warm-up: the first request waits for the rules and the neighbour entries.
      for (let deadline = Date.now() + 30_000; ; ) {
        const probe = await timedRun('nsenter', [`--net=/proc/${client.pid}/ns/net`, process.execPath, LOAD, `http://${target}/`, '0.2', '1']);
        if (((JSON.parse(probe.stdout || '{}') as { requests?: number }).requests ?? 0) > 0) break;
        if (Date.now() > deadline) throw new Error(`cannot reach ${target} from ${client.name}`);
      }
      progress(`${client.name} -> ${target}: ${seconds}s x ${concurrency}`);
      const out = await runOrThrow('load', 'nsenter', [`--net=/proc/${client.pid}/ns/net`, process.execPath, LOAD, `http://${target}/`, String(seconds), String(concurrency)], { timeoutMs: (seconds + 30) * 1000 });
      return JSON.parse(out) as Record<string, number>;
    };
    // Two rounds in alternating order, so drift from other load on the machine hits both sides alike.
    const sum = (a: Record<string, number>, b: Record<string, number>): Record<string, number> => ({
      requests: (a['requests'] ?? 0) + (b['requests'] ?? 0),
      failures: (a['failures'] ?? 0) + (b['failures'] ?? 0),
      rps: Math.round(((a['rps'] ?? 0) + (b['rps'] ?? 0)) / 2),
      p50_ms: Math.round((((a['p50_ms'] ?? 0) + (b['p50_ms'] ?? 0)) / 2) * 1000) / 1000,
      p99_ms: Math.max(a['p99_ms'] ?? 0, b['p99_ms'] ?? 0),
    });
    const pair = async (client: Row): Promise<[Record<string, number>, Record<string, number>]> => {
      const direct1 = await measure(client, direct);
      const vip1 = await measure(client, vip);
      const vip2 = await measure(client, vip);
      const direct2 = await measure(client, direct);
      return [sum(direct1, direct2), sum(vip1, vip2)];
    };
    const [sameDirect, sameVip] = await pair(near);
    const [crossDirect, crossVip] = await pair(far);
    const ratio = (a: Record<string, number>, b: Record<string, number>): number => Math.round(((a['rps'] ?? 0) / (b['rps'] ?? 1)) * 100) / 100;
    let iperf: Record<string, number> | undefined;
    if ((await timedRun('sh', ['-c', 'command -v iperf3'])).exitCode === 0) {
      // One iperf3 server run per measurement (-1: it exits after one client).
      const bulk = async (client: Row, target: string): Promise<number> => {
        const server = timedRun('nsenter', [`--net=/proc/${web.pid}/ns/net`, 'iperf3', '-s', '-1', '-p', '5201'], { timeoutMs: 60_000 });
        await new Promise((resolve) => setTimeout(resolve, 500));
        const out = await runOrThrow('iperf3', 'nsenter', [`--net=/proc/${client.pid}/ns/net`, 'iperf3', '-c', target, '-p', '5201', '-t', '3', '-J'], { timeoutMs: 30_000 });
        await server;
        return Math.round(((JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } } }).end?.sum_received?.bits_per_second ?? 0) / 1e6);
      };
      const crossMbps = await bulk(far, vip);
      const crossDirectMbps = await bulk(far, direct);
      const sameMbps = await bulk(near, vip);
      const sameDirectMbps = await bulk(near, direct);
      iperf = {
        vip_same_host_mbps: sameMbps,
        direct_same_host_mbps: sameDirectMbps,
        vip_cross_host_mbps: crossMbps,
        direct_cross_host_mbps: crossDirectMbps,
        vip_over_direct_same_host: Math.round((sameMbps / Math.max(1, sameDirectMbps)) * 100) / 100,
        vip_over_direct_cross_host: Math.round((crossMbps / Math.max(1, crossDirectMbps)) * 100) / 100,
      };
    }
    for (const name of ['web', 'near', 'far']) await skiff(['service', 'rm', name]);
    return {
      bench: 'vip',
      seconds,
      concurrency,
      same_host: { direct: sameDirect, vip: sameVip, vip_over_direct: ratio(sameVip, sameDirect) },
      cross_host: { direct: crossDirect, vip: crossVip, vip_over_direct: ratio(crossVip, crossDirect) },
      cross_over_same_direct: ratio(crossDirect, sameDirect),
      ...(iperf === undefined ? {} : { iperf3: iperf }),
      host: await hostFacts(),
    };
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
