/**
 * A small OCI distribution v2 client over node:http(s) (http-get.ts says why not `fetch`): manifests and blobs of one repository, with
 * Basic and Bearer (token) auth driven by the registry's WWW-Authenticate challenge, and bounded
 * retries with backoff for connection errors, 5xx and 429. HTTPS unless the registry is insecure.
 */
import { httpGet, type HttpResponse } from './http-get.js';
import { ImageError } from './types.js';

/** Attempts per request (first try included) for connection errors, 5xx and 429. */
export const MAX_REQUEST_ATTEMPTS = 4;
/** Backoff before the second attempt; doubles each retry up to MAX_RETRY_BACKOFF_MS. */
export const INITIAL_RETRY_BACKOFF_MS = 100;
export const MAX_RETRY_BACKOFF_MS = 2_000;
/** Time for one manifest or token request, body included. */
export const MANIFEST_TIMEOUT_MS = 30_000;
/** Time for one blob download, body included. */
export const BLOB_TIMEOUT_MS = 15 * 60_000;
/** Largest manifest, index or token response the client reads. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Credentials for one registry (`host:port` as in references). */
export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryClientOptions {
  registry: string;
  repository: string;
  insecure: boolean;
  credentials?: RegistryCredentials;
  /** Names the image in error messages, e.g. `"demo/web:v1"`. */
  context: string;
  /** Attempts per request; default MAX_REQUEST_ATTEMPTS (a manager resolving a tag uses fewer). */
  maxAttempts?: number;
  /** Time for one manifest or token request; default MANIFEST_TIMEOUT_MS. */
  manifestTimeoutMs?: number;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="...",service="...",scope="..."` (or `Basic realm="..."`). */
export function parseChallenge(header: string): Challenge | undefined {
  const match = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!match?.[1]) return undefined;
  const params: Record<string, string> = {};
  for (const param of (match[2] ?? '').matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    const key = param[1];
    if (key !== undefined) params[key.toLowerCase()] = (param[2] ?? param[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return { scheme: match[1].toLowerCase(), params };
}

function describeCause(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** Client for one repository on one registry. Holds its auth header once a challenge was answered. */
export class RegistryClient {
  private authorization: string | undefined;
  private readonly baseUrl: string;

  constructor(private readonly options: RegistryClientOptions) {
    const host = options.registry === 'docker.io' ? 'registry-1.docker.io' : options.registry;
    this.baseUrl = `${options.insecure ? 'http' : 'https'}://${host}/v2/${options.repository}`;
  }

  /** GETs `/manifests/<reference>` and returns its bytes and Content-Type; 404 is `not_found`. */
  async getManifest(reference: string, accept: string[]): Promise<{ bytes: Buffer; contentType: string | null }> {
    const response = await this.request(`/manifests/${reference}`, { accept: accept.join(', ') }, this.options.manifestTimeoutMs ?? MANIFEST_TIMEOUT_MS);
    if (response.status === 404) {
      await response.body?.cancel();
      throw new ImageError(
        'not_found',
        `cannot pull image ${this.options.context}: manifest unknown to registry ${this.options.registry}`,
      );
    }
    await this.expectOk(response, `manifest ${reference}`);
    return { bytes: await readLimited(response, MAX_MANIFEST_BYTES, this.options.context), contentType: response.headers.get('content-type') };
  }

  /** GETs `/blobs/<digest>` and returns the streaming response (status 200). */
  async getBlob(digest: string): Promise<HttpResponse> {
    const response = await this.request(`/blobs/${digest}`, {}, BLOB_TIMEOUT_MS);
    if (response.status === 404) {
      await response.body?.cancel();
      throw new ImageError('not_found', `cannot pull image ${this.options.context}: blob ${digest} unknown to registry ${this.options.registry}`);
    }
    await this.expectOk(response, `blob ${digest}`);
    return response;
  }

  private async expectOk(response: HttpResponse, what: string): Promise<void> {
    if (response.status === 200) return;
    await response.body?.cancel();
    if (response.status === 401 || response.status === 403) {
      throw new ImageError('unauthorized', `cannot pull image ${this.options.context}: registry ${this.options.registry} refused access to ${what} (HTTP ${response.status})`);
    }
    throw new ImageError('registry_unreachable', `cannot pull image ${this.options.context}: registry ${this.options.registry} answered HTTP ${response.status} for ${what}`);
  }

  /** One logical request: retries transient failures, answers one auth challenge. */
  private async request(path: string, headers: Record<string, string>, timeoutMs: number): Promise<HttpResponse> {
    let response = await this.fetchWithRetry(`${this.baseUrl}${path}`, headers, timeoutMs);
    if (response.status === 401) {
      const challenge = parseChallenge(response.headers.get('www-authenticate') ?? '');
      await response.body?.cancel();
      if (challenge === undefined) {
        throw new ImageError('unauthorized', `cannot pull image ${this.options.context}: registry ${this.options.registry} answered 401 without a WWW-Authenticate challenge`);
      }
      await this.answerChallenge(challenge);
      response = await this.fetchWithRetry(`${this.baseUrl}${path}`, headers, timeoutMs);
    }
    return response;
  }

  private async answerChallenge(challenge: Challenge): Promise<void> {
    const { credentials, registry, context } = this.options;
    const basic = credentials ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` : undefined;
    if (challenge.scheme === 'basic') {
      if (basic === undefined) throw new ImageError('unauthorized', `cannot pull image ${context}: registry ${registry} requires credentials and none are configured`);
      this.authorization = basic;
      return;
    }
    if (challenge.scheme !== 'bearer' || challenge.params.realm === undefined) {
      throw new ImageError('unauthorized', `cannot pull image ${context}: registry ${registry} sent an unsupported auth challenge "${challenge.scheme}"`);
    }
    const url = new URL(challenge.params.realm);
    if (challenge.params.service !== undefined) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', challenge.params.scope ?? `repository:${this.options.repository}:pull`);
    // Credentials go only over TLS, or to a registry the operator marked insecure on purpose.
    const headers: Record<string, string> = basic !== undefined && (url.protocol === 'https:' || this.options.insecure) ? { authorization: basic } : {};
    const response = await this.fetchWithRetry(url.toString(), headers, this.options.manifestTimeoutMs ?? MANIFEST_TIMEOUT_MS);
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new ImageError('unauthorized', `cannot pull image ${context}: token service ${url.host} for registry ${registry} answered HTTP ${response.status}`);
    }
    const body = JSON.parse((await readLimited(response, MAX_MANIFEST_BYTES, context)).toString('utf8')) as { token?: unknown; access_token?: unknown };
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (token === undefined) throw new ImageError('unauthorized', `cannot pull image ${context}: token service for registry ${registry} returned no token`);
    this.authorization = `Bearer ${token}`;
  }

  private async fetchWithRetry(url: string, headers: Record<string, string>, timeoutMs: number): Promise<HttpResponse> {
    const isRegistry = url.startsWith(this.baseUrl);
    const allHeaders = this.authorization !== undefined && isRegistry ? { ...headers, authorization: this.authorization } : headers;
    let backoffMs = INITIAL_RETRY_BACKOFF_MS;
    const maxAttempts = this.options.maxAttempts ?? MAX_REQUEST_ATTEMPTS;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const response = await httpGet(url, allHeaders, timeoutMs);
        if (response.status < 500 && response.status !== 429) return response;
        if (attempt >= maxAttempts) return response;
        await response.body?.cancel();
      } catch (error) {
        const failure = describeCause(error);
        if (attempt >= maxAttempts) {
          throw new ImageError(
            'registry_unreachable',
            `cannot pull image ${this.options.context}: registry ${this.options.registry} is unreachable (${failure}) after ${attempt} attempts`,
          );
        }
      }
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, MAX_RETRY_BACKOFF_MS);
    }
  }
}

/** Reads a whole (small) body, refusing more than `limit` bytes. */
async function readLimited(response: HttpResponse, limit: number, context: string): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > limit) {
    await response.body?.cancel();
    throw new ImageError('unsupported_media_type', `cannot pull image ${context}: response of ${declared} bytes exceeds the ${limit}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  if (response.body === null) return Buffer.alloc(0);
  for await (const chunk of response.body) {
    total += chunk.length;
    if (total > limit) throw new ImageError('unsupported_media_type', `cannot pull image ${context}: response exceeds the ${limit}-byte limit`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}
