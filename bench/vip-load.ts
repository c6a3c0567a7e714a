/**
 * The load generator of bench/vip.ts, run inside a container's network namespace (nsenter --net,
 * the host's node): `node vip-load.js URL SECONDS CONCURRENCY` sends GETs, one new TCP connection
 * each (so every request passes the VIP's DNAT, which applies per connection), from CONCURRENCY
 * loops for SECONDS, and prints one JSON line: requests, failures, rate and latency percentiles.
 */
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';

function get(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: 5_000 }, (response) => {
      response.resume();
      response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${response.statusCode ?? 0}`))));
      response.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const [url = '', secondsText = '5', concurrencyText = '4'] = process.argv.slice(2);
  const endAt = performance.now() + Number(secondsText) * 1000;
  const latencies: number[] = [];
  let failures = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Number(concurrencyText) }, async () => {
      while (performance.now() < endAt) {
        const before = performance.now();
        try {
          await get(url);
          latencies.push(performance.now() - before);
        } catch {
          failures += 1;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 1000) / 1000;
  process.stdout.write(`${JSON.stringify({ requests: latencies.length, failures, rps: Math.round(latencies.length / elapsed), p50_ms: at(0.5), p99_ms: at(0.99) })}\n`);
}

void main();
