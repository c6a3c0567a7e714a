/**
 * Test support: a tiny in-memory OCI distribution registry on 127.0.0.1 built on node:http, with
 * hooks to corrupt blobs, demand auth and fail requests. Not used outside tests.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { writeTar } from '../../deploy/images/tar-writer.js';

export interface FakeBlob {
  digest: string;
  bytes: Buffer;
  mediaType: string;
}

/** `sha256:<hex>` of the bytes. */
export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function blob(bytes: Buffer, mediaType: string): FakeBlob {
  return { digest: digestOf(bytes), bytes, mediaType };
}

/** A one-layer image (a file `hello` holding `content`) with its config and manifest. */
export function fakeImage(content: string, run: { Entrypoint?: string[]; Cmd?: string[]; User?: string } = {}): {
  layer: FakeBlob;
  config: FakeBlob;
  manifest: FakeBlob;
} {
  const tar = writeTar([{ kind: 'file', path: 'hello', mode: 0o644, content: Buffer.from(content) }], 0);
  const layer = blob(gzipSync(tar), 'application/vnd.oci.image.layer.v1.tar+gzip');
  const config = blob(
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['A=1'], ...run }, rootfs: { type: 'layers', diff_ids: [digestOf(tar)] } })),
    'application/vnd.oci.image.config.v1+json',
  );
  const descriptor = (item: FakeBlob) => ({ mediaType: item.mediaType, digest: item.digest, size: item.bytes.length });
  const manifest = blob(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: descriptor(config), layers: [descriptor(layer)] })),
    'application/vnd.oci.image.manifest.v1+json',
  );
  return { layer, config, manifest };
}

/** An OCI index over `entries` (manifest blob + platform). */
export function fakeIndex(entries: { manifest: FakeBlob; os: string; architecture: string }[]): FakeBlob {
  const manifests = entries.map((entry) => ({
    mediaType: entry.manifest.mediaType,
    digest: entry.manifest.digest,
    size: entry.manifest.bytes.length,
    platform: { os: entry.os, architecture: entry.architecture },
  }));
  return blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests })), 'application/vnd.oci.image.index.v1+json');
}

export class FakeRegistry {
  readonly requests: { path: string; authorization: string | undefined }[] = [];
  /** Tags and digests -> manifest blobs, per repository (`repo:ref`). */
  readonly manifests = new Map<string, FakeBlob>();
  readonly blobs = new Map<string, FakeBlob>();
  /** Returns true when it answered the request itself (auth, faults). */
  intercept: (request: IncomingMessage, response: ServerResponse) => boolean = () => false;
  private server: Server | undefined;
  addr = '';

  /** Adds the image's blobs and its manifest under `repository:tag` and `repository:digest`. */
  addImage(repository: string, tag: string, image: { manifest: FakeBlob; config?: FakeBlob; layer?: FakeBlob }): void {
    this.manifests.set(`${repository}:${tag}`, image.manifest);
    this.manifests.set(`${repository}:${image.manifest.digest}`, image.manifest);
    for (const item of [image.config, image.layer]) if (item) this.blobs.set(item.digest, item);
  }

  async start(): Promise<string> {
    this.server = createServer((request, response) => this.handle(request, response));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('fake registry has no address');
    this.addr = `127.0.0.1:${address.port}`;
    return this.addr;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const path = request.url ?? '';
    this.requests.push({ path, authorization: request.headers.authorization });
    if (this.intercept(request, response)) return;
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    const blobMatch = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
    const found = manifest ? this.manifests.get(`${manifest[1]}:${manifest[2]}`) : blobMatch ? this.blobs.get(blobMatch[2] ?? '') : undefined;
    if (found === undefined) {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
      return;
    }
    response.writeHead(200, { 'content-type': found.mediaType, 'docker-content-digest': found.digest, 'content-length': found.bytes.length }).end(found.bytes);
  }
}
