import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { commandProbe, httpProbe, MAX_HEALTH_OUTPUT_BYTES, tcpProbe } from './health-probes.js';
import { fakeExecProcess, finishedExecProcess } from './testing/fake-exec.js';
import { FakeRuntime } from './testing/fake-runtime.js';

const LOCALHOST = '127.0.0.1';
const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A local HTTP server answering each path with the status it names: /200, /301, /404; /hang never answers. */
async function statusServer(): Promise<number> {
  const server = http.createServer((request, response) => {
    if (request.url === '/hang') return;
    const status = Number(request.url?.slice(1));
    response.writeHead(status, status === 301 ? { location: '/200' } : {});
    response.end('body');
  });
  await new Promise<void>((resolve) => server.listen(0, LOCALHOST, resolve));
  closers.push(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return (server.address() as net.AddressInfo).port;
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, LOCALHOST, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const neverAborted = (): AbortSignal => new AbortController().signal;

async function runningRuntime(): Promise<FakeRuntime> {
  const runtime = new FakeRuntime();
  await runtime.run({ containerId: 'c1', hostname: 'c1', layerDirs: [], argv: ['sleep'], env: [], user: '', workingDir: '/', memoryLimitBytes: 0, nanoCpus: 0, pidsLimit: 0, labels: {}, files: [] });
  return runtime;
}

describe('health probes', () => {
  it('command probe runs argv in the container and is healthy on exit 0, with its output', async () => {
    const runtime = await runningRuntime();
    const options: unknown[] = [];
    runtime.execHandler = async (_id, execOptions) => {
      options.push(execOptions);
      return finishedExecProcess(0, 'all good\n');
    };
    const result = await commandProbe({ runtime, containerId: 'c1', address: () => undefined }, ['test', '-f', '/tmp/ok'])(neverAborted());
    expect(result).toEqual({ healthy: true, output: 'all good\n' });
    expect(runtime.calls).toEqual(['run c1', 'exec c1 test -f /tmp/ok']);
    expect(options).toEqual([{ argv: ['test', '-f', '/tmp/ok'], env: [], user: '', workingDir: '', stdin: false }]);
  });

  it('command probe is unhealthy on a non-zero exit, keeping stdout and stderr up to 4 KiB', async () => {
    const runtime = await runningRuntime();
    runtime.execHandler = async () => {
      const process = fakeExecProcess();
      process.finish(1, 'x'.repeat(MAX_HEALTH_OUTPUT_BYTES), 'tail that is cut');
      return process;
    };
    const result = await commandProbe({ runtime, containerId: 'c1', address: () => undefined }, ['false'])(neverAborted());
    expect(result.healthy).toBe(false);
    expect(result.output).toBe('x'.repeat(MAX_HEALTH_OUTPUT_BYTES));

    runtime.execHandler = async () => finishedExecProcess(2);
    expect(await commandProbe({ runtime, containerId: 'c1', address: () => undefined }, ['false'])(neverAborted())).toEqual({ healthy: false, output: 'health check exited with code 2' });
  });

  it('command probe fails with the reason when the command cannot start', async () => {
    const runtime = await runningRuntime();
    runtime.exit('c1', 0);
    const result = await commandProbe({ runtime, containerId: 'c1', address: () => undefined }, ['true'])(neverAborted());
    expect(result).toEqual({ healthy: false, output: 'cannot run health check: cannot exec in c1: it is not running' });
  });

  it('http probe is healthy on 2xx and 3xx (without following redirects) and unhealthy otherwise', async () => {
    const port = await statusServer();
    const probe = (path: string) => httpProbe({ address: () => LOCALHOST }, port, path)(neverAborted());
    expect(await probe('/200')).toEqual({ healthy: true, output: `GET http://${LOCALHOST}:${port}/200: 200 OK` });
    expect(await probe('/301')).toEqual({ healthy: true, output: `GET http://${LOCALHOST}:${port}/301: 301 Moved Permanently` });
    expect(await probe('/404')).toEqual({ healthy: false, output: `GET http://${LOCALHOST}:${port}/404: 404 Not Found` });
    expect(await probe('/500')).toEqual({ healthy: false, output: `GET http://${LOCALHOST}:${port}/500: 500 Internal Server Error` });
  });

  it('http probe is unhealthy when the connection is refused, the task has no address, or it is aborted', async () => {
    const port = await closedPort();
    const refused = await httpProbe({ address: () => LOCALHOST }, port, '/')(neverAborted());
    expect(refused).toEqual({ healthy: false, output: `GET http://${LOCALHOST}:${port}/: connect ECONNREFUSED ${LOCALHOST}:${port}` });
    expect(await httpProbe({ address: () => undefined }, 80, '/')(neverAborted())).toEqual({ healthy: false, output: 'cannot probe over HTTP: the task has no address' });
    const serverPort = await statusServer();
    const controller = new AbortController();
    const hanging = httpProbe({ address: () => LOCALHOST }, serverPort, '/hang')(controller.signal);
    setTimeout(() => controller.abort(), 20);
    const aborted = await hanging;
    expect(aborted.healthy).toBe(false);
    expect(aborted.output).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/hang: .*abort/i);
  });

  it('tcp probe is healthy when a connection opens and unhealthy when it is refused', async () => {
    const server = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, LOCALHOST, resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const { port } = server.address() as net.AddressInfo;
    expect(await tcpProbe({ address: () => LOCALHOST }, port)(neverAborted())).toEqual({ healthy: true, output: `connected to ${LOCALHOST}:${port}` });
    const closed = await closedPort();
    expect(await tcpProbe({ address: () => LOCALHOST }, closed)(neverAborted())).toEqual({ healthy: false, output: `cannot connect to ${LOCALHOST}:${closed}: connect ECONNREFUSED ${LOCALHOST}:${closed}` });
  });
});
