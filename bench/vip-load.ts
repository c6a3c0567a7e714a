/**
 * The load generator of bench/vip.ts, run inside a container's network namespace (nsenter --net,
 * the host's node). GETs, one new TCP connection each (so every request passes the VIP's DNAT,
 * which applies per connection), from CONCURRENCY loops; prints one JSON line.
 *
 *   node vip-load.js URL SECONDS CONCURRENCY
 *     one target: requests, failures, rate and latency percentiles.
 *   node vip-load.js --pairs URL_A URL_B SECONDS_PER_SIDE CONCURRENCY SLICE_MS
 *     two targets in alternating slices of SLICE_MS (A B, B A, A B, ...): every loop sends to the
 *     side of the current slice, so both sides see the same load on the machine to within one
 *     slice. Each side connects from its own half of the ephemeral ports (vip-pairs.ts portRange,
 *     in order), so neither meets the other's TIME_WAIT entries on the backend. Prints each side's
 *     figures and, per pair of adjacent slices, the ratio B/A of the requests started in them.
 */
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { portRange, type Side } from './vip-pairs.js';

/** Errors of a local port still taken (the next port is tried; not a failed request). */
const PORT_TAKEN = new Set(['EADDRINUSE', 'EADDRNOTAVAIL']);

function get(url: string, localPort?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: 5_000, ...(localPort === undefined ? {} : { localPort }) }, (response) => {
      response.resume();
      response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${response.statusCode ?? 0}`))));
      response.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

interface Tally {
  latencies: number[];
  failures: number;
  portsTaken: number;
  measuredMs: number;
}

const at = (sorted: readonly number[], q: number): number => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) * 1000) / 1000;

function report(tally: Tally): Record<string, number> {
  const sorted = [...tally.latencies].sort((a, b) => a - b);
  return {
    requests: sorted.length,
    failures: tally.failures,
    rps: Math.round(sorted.length / (tally.measuredMs / 1000)),
    p50_ms: at(sorted, 0.5),
    p99_ms: at(sorted, 0.99),
    ports_taken: tally.portsTaken,
  };
}

async function single(url: string, seconds: number, concurrency: number): Promise<void> {
  const endAt = performance.now() + seconds * 1000;
  const tally: Tally = { latencies: [], failures: 0, portsTaken: 0, measuredMs: 0 };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < endAt) {
        const before = performance.now();
        try {
          await get(url);
          tally.latencies.push(performance.now() - before);
        } catch {
          tally.failures += 1;
        }
      }
    }),
  );
  tally.measuredMs = performance.now() - started;
  process.stdout.write(`${JSON.stringify(report(tally))}\n`);
}

/** Source ports of one side, handed out in order and wrapping around. */
function portCursor(side: Side): () => number {
  const [first = 0, last = 0] = portRange(side).split(' ').map(Number);
  let next = first;
  return () => {
    const port = next;
    next = next >= last ? first : next + 1;
    return port;
  };
}

async function pairs(urls: Record<Side, string>, secondsPerSide: number, concurrency: number, sliceMs: number): Promise<void> {
  const slices = 2 * Math.max(1, Math.round((secondsPerSide * 1000) / sliceMs));
  // Slice k belongs to pair floor(k / 2); direct first in even pairs, VIP first in odd ones.
  const sideOf = (slice: number): Side => ((slice % 2 === 0) === (Math.floor(slice / 2) % 2 === 0) ? 'direct' : 'vip');
  const started = performance.now();
  const endAt = started + slices * sliceMs;
  const startedIn = new Array<number>(slices).fill(0);
  const tallies: Record<Side, Tally> = {
    direct: { latencies: [], failures: 0, portsTaken: 0, measuredMs: 0 },
    vip: { latencies: [], failures: 0, portsTaken: 0, measuredMs: 0 },
  };
  const ports: Record<Side, () => number> = { direct: portCursor('direct'), vip: portCursor('vip') };
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let now = performance.now(); now < endAt; now = performance.now()) {
        const slice = Math.min(slices - 1, Math.floor((now - started) / sliceMs));
        const side = sideOf(slice);
        const tally = tallies[side];
        try {
          await get(urls[side], ports[side]());
          tally.latencies.push(performance.now() - now);
          startedIn[slice] = (startedIn[slice] ?? 0) + 1;
        } catch (error) {
          if (PORT_TAKEN.has((error as NodeJS.ErrnoException).code ?? '')) tally.portsTaken += 1;
          else tally.failures += 1;
        }
      }
    }),
  );
  tallies.direct.measuredMs = tallies.vip.measuredMs = (slices / 2) * sliceMs;
  const ratios: number[] = [];
  for (let pair = 0; 2 * pair + 1 < slices; pair += 1) {
    const [first = 0, second = 0] = [startedIn[2 * pair], startedIn[2 * pair + 1]];
    const [direct, vip] = sideOf(2 * pair) === 'direct' ? [first, second] : [second, first];
    ratios.push(Math.round((vip / Math.max(1, direct)) * 1000) / 1000);
  }
  process.stdout.write(`${JSON.stringify({ slice_ms: sliceMs, direct: report(tallies.direct), vip: report(tallies.vip), pair_ratios: ratios })}\n`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--pairs') {
    const [, direct = '', vip = '', seconds = '10', concurrency = '4', sliceMs = '500'] = args;
    await pairs({ direct, vip }, Number(seconds), Number(concurrency), Number(sliceMs));
    return;
  }
  const [url = '', seconds = '5', concurrency = '4'] = args;
  await single(url, Number(seconds), Number(concurrency));
}

void main();
