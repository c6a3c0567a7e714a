/**
 * VIP load balancing vs direct (issue #8 part 5). A lab of 1 manager and 1 worker; network
 * `front`; service `web` (1 task, on h2); clients on h2 (same host) and h1 (across VXLAN). From
 * each client's network namespace, small HTTP GETs (a new connection each) from --concurrency
 * loops: to the task's overlay address directly, and to the VIP (nftables DNAT in the client's
 * namespace). Both sides run in the same client namespace against the same task, so conntrack and
 * the table are present for both; they differ only in the DNAT. The sides alternate in slices of
 * --slice-ms (direct VIP, VIP direct, ...) for --seconds each, so load from the rest of the shared
 * machine hits both alike; the result is the median of the per-pair VIP/direct ratios. Each side
 * connects from its own half of the ephemeral ports (vip-pairs.ts portRange says why). With
 * iperf3 installed, also bulk TCP through the VIP and direct, --pairs interleaved pairs of 3 s.
 * Prints one JSON line.
 *
 *   npm run bench:vip -- [--seconds 4] [--concurrency 4] [--slice-ms 500] [--pairs 5]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hostFacts, withBenchLab } from './lab-bench.js';
import { progress, runOrThrow, timedRun } from './bench-support.js';
import { skiffBinary } from './skiff-start.js';
import { percentile } from './stats.js';
import { medianRatio, netstatCounter, pairOrder, pairRatios, type Side } from './vip-pairs.js';

interface Row {
  name: string;
  hostname: string;
  pid: number;
  addresses: string[];
  state: string;
}

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '4' }, concurrency: { type: 'string', default: '4' }, pairs: { type: 'string', default: '5' }, 'slice-ms': { type: 'string', default: '500' } },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const pairs = Number(values.pairs);
const sliceMs = Number(values['slice-ms']);
for (const [flag, value] of [['--concurrency', concurrency], ['--pairs', pairs], ['--slice-ms', sliceMs]] as const) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`cannot run the benchmark: ${flag} must be a whole number >= 1`);
}
if (!(seconds > 0)) throw new Error('cannot run the benchmark: --seconds must be > 0');
/** Length of one iperf3 run. */
const IPERF_SECONDS = 3;
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
    const inClient = (client: Row, file: string, args: string[]): string[] => [`--net=/proc/${client.pid}/ns/net`, file, ...args];
    const synRetransmits = async (client: Row): Promise<number> =>
      netstatCounter(await runOrThrow('read netstat', 'nsenter', inClient(client, 'cat', ['/proc/net/netstat'])), 'TcpExt', 'TCPSynRetrans');
    const targetOf = (side: Side): string => (side === 'vip' ? vip : direct);
    const compare = async (client: Row): Promise<Record<string, unknown>> => {
      // Warm-up: the first request waits for the rules and the neighbour entries.
      for (const side of ['direct', 'vip'] as const) {
        for (let deadline = Date.now() + 30_000; ; ) {
          const probe = await timedRun('nsenter', inClient(client, process.execPath, [LOAD, `http://${targetOf(side)}/`, '0.2', '1']));
          if (((JSON.parse(probe.stdout || '{}') as { requests?: number }).requests ?? 0) > 0) break;
          if (Date.now() > deadline) throw new Error(`cannot reach ${targetOf(side)} from ${client.name}`);
        }
      }
      progress(`${client.name}: direct ${direct} and VIP ${vip} in alternating ${sliceMs} ms slices, ${seconds}s each x ${concurrency}`);
      const before = await synRetransmits(client);
      const args = [LOAD, '--pairs', `http://${direct}/`, `http://${vip}/`, String(seconds), String(concurrency), String(sliceMs)];
      const output = await runOrThrow('load', 'nsenter', inClient(client, process.execPath, args), { timeoutMs: (2 * seconds + 30) * 1000 });
      const { direct: directFigures, vip: vipFigures, pair_ratios: ratios } = JSON.parse(output) as { direct: { rps: number }; vip: { rps: number }; pair_ratios: number[] };
      const out = { direct: directFigures, vip: vipFigures, pair_ratios: ratios };
      const syn = (await synRetransmits(client)) - before;
      // The median of the per-pair ratios is the result; the ratio of the totals is shown beside it.
      return { ...out, vip_over_direct: medianRatio(out.pair_ratios), vip_over_direct_total: medianRatio([out.vip.rps / Math.max(1, out.direct.rps)]), syn_retransmits: syn };
    };
    const same = await compare(near);
    const cross = await compare(far);
    let iperf: Record<string, unknown> | undefined;
    if ((await timedRun('sh', ['-c', 'command -v iperf3'])).exitCode === 0) {
      // One iperf3 server run per measurement (-1: it exits after one client).
      const bulk = async (client: Row, side: Side): Promise<number> => {
        const server = timedRun('nsenter', [`--net=/proc/${web.pid}/ns/net`, 'iperf3', '-s', '-1', '-p', '5201'], { timeoutMs: 60_000 });
        await new Promise((resolve) => setTimeout(resolve, 500));
        const out = await runOrThrow('iperf3', 'nsenter', inClient(client, 'iperf3', ['-c', targetOf(side), '-p', '5201', '-t', String(IPERF_SECONDS), '-J']), { timeoutMs: 30_000 });
        await server;
        return Math.round(((JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } } }).end?.sum_received?.bits_per_second ?? 0) / 1e6);
      };
      const bulkCompare = async (client: Row): Promise<{ direct_mbps: number[]; vip_mbps: number[]; ratios: number[]; median: number }> => {
        const mbps: Record<Side, number[]> = { direct: [], vip: [] };
        for (let index = 0; index < pairs; index += 1) for (const side of pairOrder(index)) mbps[side].push(await bulk(client, side));
        return { direct_mbps: mbps.direct, vip_mbps: mbps.vip, ...pairRatios(mbps.direct, mbps.vip) };
      };
      progress(`iperf3: ${pairs} interleaved pairs of ${IPERF_SECONDS}s per client`);
      const sameBulk = await bulkCompare(near);
      const crossBulk = await bulkCompare(far);
      const median = (values: number[]): number => percentile(values, 50);
      iperf = {
        pairs,
        seconds: IPERF_SECONDS,
        vip_same_host_mbps: median(sameBulk.vip_mbps),
        direct_same_host_mbps: median(sameBulk.direct_mbps),
        vip_cross_host_mbps: median(crossBulk.vip_mbps),
        direct_cross_host_mbps: median(crossBulk.direct_mbps),
        same_host_pair_ratios: sameBulk.ratios,
        cross_host_pair_ratios: crossBulk.ratios,
        vip_over_direct_same_host: sameBulk.median,
        vip_over_direct_cross_host: crossBulk.median,
      };
    }
    for (const name of ['web', 'near', 'far']) await skiff(['service', 'rm', name]);
    return {
      bench: 'vip',
      seconds,
      concurrency,
      slice_ms: sliceMs,
      same_host: same,
      cross_host: cross,
      cross_over_same_direct: Math.round(((cross['direct'] as { rps: number }).rps / Math.max(1, (same['direct'] as { rps: number }).rps)) * 100) / 100,
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
