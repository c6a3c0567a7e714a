import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpGet, HttpGetError, MAX_REDIRECTS } from './http-get.js';

const servers: Server[] = [];

/** A real HTTP server on 127.0.0.1 answering with `handler`; closed after each test. */
async function serve(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function text(body: AsyncIterable<Uint8Array> | null): Promise<string> {
  const chunks: Buffer[] = [];
  if (body !== null) for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('httpGet', () => {
  it('returns status, headers (case-insensitive) and the streamed body', async () => {
    const base = await serve((request, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'x-echo': request.headers['accept'] ?? '' }).end('{"ok":true}');
    });
    const response = await httpGet(`${base}/v2/`, { accept: 'a/b' }, 5_000);
    expect(response.status).toBe(200);
    expect(response.headers.get('Content-Type')).toBe('application/json');
    expect(response.headers.get('x-echo')).toBe('a/b');
    expect(response.headers.get('x-missing')).toBeNull();
    expect(await text(response.body)).toBe('{"ok":true}');
  });

  it('follows redirects, keeping Authorization for the same origin only', async () => {
    const seen: Array<{ url: string; authorization: string | undefined }> = [];
    const storage = await serve((request, response) => {
      seen.push({ url: `storage${request.url ?? ''}`, authorization: request.headers.authorization });
      response.writeHead(200).end('blob bytes');
    });
    const registry = await serve((request, response) => {
      seen.push({ url: `registry${request.url ?? ''}`, authorization: request.headers.authorization });
      if (request.url === '/v2/r/blobs/a') response.writeHead(307, { location: '/v2/r/blobs/b' }).end();
      else response.writeHead(302, { location: `${storage}/signed?x=1` }).end();
    });
    const response = await httpGet(`${registry}/v2/r/blobs/a`, { authorization: 'Bearer secret' }, 5_000);
    expect(response.status).toBe(200);
    expect(await text(response.body)).toBe('blob bytes');
    expect(seen).toEqual([
      { url: '/v2/r/blobs/a', authorization: 'Bearer secret' },
      { url: '/v2/r/blobs/b', authorization: 'Bearer secret' },
      { url: '/signed?x=1', authorization: undefined },
    ].map((entry, index) => ({ ...entry, url: `${index < 2 ? 'registry' : 'storage'}${entry.url}` })));
  });

  it('gives up after MAX_REDIRECTS redirects', async () => {
    let hits = 0;
    const base = await serve((_request, response) => {
      hits += 1;
      response.writeHead(302, { location: '/again' }).end();
    });
    await expect(httpGet(`${base}/start`, {}, 5_000)).rejects.toThrow(`more than ${MAX_REDIRECTS} redirects`);
    expect(hits).toBe(MAX_REDIRECTS + 1);
  });

  it('a refused connection rejects with its socket error code', async () => {
    const base = await serve((_request, response) => response.end());
    const port = new URL(base).port;
    const server = servers.pop();
    await new Promise((resolve) => server?.close(resolve));
    const error = await httpGet(`http://127.0.0.1:${port}/`, {}, 5_000).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HttpGetError);
    expect((error as HttpGetError).code).toBe('ECONNREFUSED');
  });

  it('the deadline covers a server that never answers', async () => {
    const base = await serve(() => undefined);
    const started = Date.now();
    const error = await httpGet(`${base}/slow`, {}, 200).catch((caught: unknown) => caught);
    expect((error as HttpGetError).code).toBe('ETIMEDOUT');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('the deadline also ends a body that stalls after the headers', async () => {
    const base = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': '100' });
      response.write('part');
    });
    const response = await httpGet(`${base}/stall`, {}, 300);
    expect(response.status).toBe(200);
    await expect(text(response.body)).rejects.toThrow(/deadline/);
  });

  it('cancel drops the rest of the body and the connection', async () => {
    let closed: Promise<void> | undefined;
    const base = await serve((request, response) => {
      closed = new Promise((resolve) => request.socket.on('close', () => resolve()));
      response.writeHead(200, { 'content-length': '100' });
      response.write('part');
    });
    const response = await httpGet(`${base}/cancel`, {}, 5_000);
    await response.body?.cancel();
    expect((await text(response.body)).length).toBeLessThan(100);
    await closed;
  });
});
