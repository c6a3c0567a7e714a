/**
 * VIP load balancing vs direct (issue #8 part 5). A lab of 1 manager and 1 worker; network
 * `front`; service `web` (1 task, on h2); clients on h2 (same host) and h1 (across VXLAN). From
 * each client's network namespace, small HTTP GETs (a new connection each) for --seconds with
 * --concurrency loops: to the task's overlay address directly, and to the VIP (nftables DNAT in
 * the client's namespace). Both sides run in the same client namespace, so conntrack and the
 * table are present for both; they differ only in the DNAT. --pairs interleaved pairs per client
 * (direct then VIP, VIP then direct, ...); each side uses its own half of the ephemeral ports
 * (see vip-pairs.ts portRange: otherwise each side's TIME_WAIT leftovers on the backend cost the
 * other side SYN retransmits). Prints one JSON line with the rates, latencies, SYN retransmits,
 * the per-pair VIP/direct ratios and their median; with iperf3 installed, also bulk TCP through
 * the VIP and direct, as the same number of interleaved pairs.
 *
 *   npm run bench:vip -- [--seconds 4] [--concurrency 4] [--pairs 5]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hostFacts, withBenchLab } from './lab-bench.js';
import { progress, runOrThrow, timedRun } from './bench-support.js';
import { skiffBinary } from './skiff-start.js';
import { percentile } from './stats.js';
import { EPHEMERAL_PORTS, netstatCounter, pairOrder, pairRatios, type Pass, portRange, type Side, sideSummary } from './vip-pairs.js';

interface Row {
  name: string;
  hostname: string;
  pid: number;
  addresses: string[];
  state: string;
}

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, concurrency: { type: 'string', default: '4' }, pairs: { type: 'string', default: '5' } } });
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const pairs = Number(values.pairs);
if (!(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(pairs) || pairs < 1) {
  throw new Error(`cannot run the benchmark: --seconds must be > 0, --concurrency and --pairs whole numbers >= 1 (got ${values.seconds}, ${values.concurrency}, ${values.pairs})`);
}
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
    const setPorts = (client: Row, range: string): Promise<string> =>
      runOrThrow('set the port range', 'nsenter', inClient(client, 'sysctl', ['-q', '-w', `net.ipv4.ip_local_port_range=${range}`]));
    const targetOf = (side: Side): string => (side === 'vip' ? vip : direct);
    const measure = async (client: Row, side: Side): Promise<Pass> => {
      const target = targetOf(side);
      await setPorts(client, portRange(side));
      // Warm-up: the first request waits for the rules and the neighbour entries.
      for (let deadline = Date.now() + 30_000; ; ) {
        const probe = await timedRun('nsenter', inClient(client, process.execPath, [LOAD, `http://${target}/`, '0.2', '1']));
        if (((JSON.parse(probe.stdout || '{}') as { requests?: number }).requests ?? 0) > 0) break;
        if (Date.now() > deadline) throw new Error(`cannot reach ${target} from ${client.name}`);
      }
      progress(`${client.name} -> ${side} ${target}: ${seconds}s x ${concurrency}`);
      const before = await synRetransmits(client);
      const out = await runOrThrow('load', 'nsenter', inClient(client, process.execPath, [LOAD, `http://${target}/`, String(seconds), String(concurrency)]), { timeoutMs: (seconds + 30) * 1000 });
      const syn = (await synRetransmits(client)) - before;
      return { ...(JSON.parse(out) as Omit<Pass, 'syn_retransmits'>), syn_retransmits: syn };
    };
    // Interleaved pairs (direct then VIP, VIP then direct, ...), each pair back to back, so drift
    // of the shared machine's load hits both sides alike; the result is the median per-pair ratio.
    const compare = async (client: Row): Promise<Record<string, unknown>> => {
      const passes: Record<Side, Pass[]> = { direct: [], vip: [] };
      for (let index = 0; index < pairs; index += 1) for (const side of pairOrder(index)) passes[side].push(await measure(client, side));
      await setPorts(client, `${EPHEMERAL_PORTS.first} ${EPHEMERAL_PORTS.last}`);
      const { ratios, median } = pairRatios(
        passes.direct.map((pass) => pass.rps),
        passes.vip.map((pass) => pass.rps),
      );
      return { direct: sideSummary(passes.direct), vip: sideSummary(passes.vip), pair_ratios: ratios, vip_over_direct: median };
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
      pairs,
      same_host: same,
      cross_host: cross,
      cross_over_same_direct: Math.round(((cross['direct'] as Pass).rps / Math.max(1, (same['direct'] as Pass).rps)) * 100) / 100,
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
