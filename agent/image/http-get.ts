/**
 * GET over node:http / node:https for the registry client, in place of the global `fetch`.
 *
 * Why not `fetch`: in Node 20 it is undici, whose JavaScript and WebAssembly HTTP parser stay in
 * the process once used: about 20 MiB of a worker skiffd's resident memory after its first pull,
 * against about 2 MiB for node:http (issue 7's agent-memory goal, docs/benchmarks.md). What the
 * registry client relied on from `fetch` is kept: redirects are followed (the Authorization header
 * only to the same origin, as fetch does), and the deadline covers the whole exchange, body included.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

/** Redirects followed before giving up, as fetch does. */
export const MAX_REDIRECTS = 20;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** The part of a fetch `Response` the registry client uses. */
export interface HttpResponse {
  status: number;
  headers: { get(name: string): string | null };
  /** The body as it arrives; `cancel()` drops the rest (and the connection). */
  body: (AsyncIterable<Uint8Array> & { cancel(): Promise<void> }) | null;
}

/** A failed exchange; `code` is the socket's error code (ECONNREFUSED, ...) or ETIMEDOUT for the deadline. */
export class HttpGetError extends Error {
  override readonly name = 'HttpGetError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/**
 * GETs `url` with `headers`, following redirects. Resolves once the final response's headers are
 * in; the deadline of `timeoutMs` (from the call) also ends a body that is still being read.
 */
export function httpGet(url: string, headers: Record<string, string>, timeoutMs: number): Promise<HttpResponse> {
  const deadline = Date.now() + timeoutMs;
  return follow(new URL(url), headers, deadline, 0);
}

async function follow(url: URL, headers: Record<string, string>, deadline: number, redirects: number): Promise<HttpResponse> {
  const response = await getOnce(url, headers, deadline);
  const location = response.headers.location;
  if (!REDIRECT_STATUSES.has(response.statusCode ?? 0) || location === undefined) return wrap(response);
  response.destroy();
  if (redirects >= MAX_REDIRECTS) throw new HttpGetError(`GET ${url.origin}${url.pathname}: more than ${MAX_REDIRECTS} redirects`, undefined);
  const next = new URL(location, url);
  if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new HttpGetError(`GET ${url.origin}${url.pathname}: redirect to unsupported ${next.protocol} URL`, undefined);
  // Credentials stay with their origin (a registry redirects blobs to storage with its own signed URL).
  const kept = next.origin === url.origin ? headers : Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'authorization'));
  return follow(next, kept, deadline, redirects + 1);
}

function getOnce(url: URL, headers: Record<string, string>, deadline: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? https.get : http.get;
    const request = get(url, { headers });
    const timeoutError = (): HttpGetError => new HttpGetError(`GET ${url.origin}${url.pathname}: no complete answer within the deadline`, 'ETIMEDOUT');
    // One timer for the exchange: it destroys the request, or the response whose body is being read.
    const timer = setTimeout(() => request.destroy(timeoutError()), Math.max(0, deadline - Date.now()));
    timer.unref();
    request.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(error instanceof HttpGetError ? error : new HttpGetError(`GET ${url.origin}${url.pathname}: ${error.message}`, error.code));
    });
    request.on('response', (response) => {
      response.on('close', () => clearTimeout(timer));
      // A deadline while the body streams surfaces through the response, where the reader is.
      request.on('error', (error) => response.destroy(error));
      resolve(response);
    });
  });
}

function wrap(response: IncomingMessage): HttpResponse {
  return {
    status: response.statusCode ?? 0,
    headers: {
      get: (name) => {
        const value = response.headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
      },
    },
    body: {
      [Symbol.asyncIterator]: () => response[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>,
      cancel: async () => {
        response.destroy();
      },
    },
  };
}
