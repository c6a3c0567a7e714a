import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ControlService, type ImageCommandReply, type ImageCommandRequest, type LoadImageChunk } from '../../proto/skiff/v1/control.js';
import { formatSize } from '../../common/format.js';
import { imageRows, LOAD_CHUNK_BYTES, loadMessages, registerImageCommands, repositoryAndTag } from './image.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const CREATED_MS = Date.UTC(2026, 10, 23, 14, 0, 0);

/** A fake Control server (test only) that answers image calls from two nodes, node-b failing. */
class FakeImageServer {
  readonly requests: ImageCommandRequest[] = [];
  loaded: { nodes: string[]; bytes: number; chunks: number } | undefined;
  private readonly server = new grpc.Server();

  reply(nodeId: string, hostname: string, request: ImageCommandRequest['request']): ImageCommandReply {
    if (hostname === 'node-b') return { nodeId, hostname, response: undefined, error: 'cannot pull image "x": registry down' };
    const listed = { references: ['registry:5000/demo/web:v1', 'registry:5000/demo/web:latest'], digest: DIGEST, sizeBytes: 4_260_000, createdMs: CREATED_MS, containers: 2 };
    switch (request?.op?.$case) {
      case 'remove':
      case 'prune':
        return { nodeId, hostname, response: { images: [], deleted: ['untagged: registry:5000/demo/web:v1', `deleted: ${DIGEST}`], reclaimedBytes: 1500 }, error: '' };
      default:
        return { nodeId, hostname, response: { images: [listed], deleted: [], reclaimedBytes: 0 }, error: '' };
    }
  }

  async start(socket: string): Promise<void> {
    const handlers = {
      imageCommand: (call: grpc.ServerWritableStream<ImageCommandRequest, ImageCommandReply>) => {
        this.requests.push(call.request);
        const targets = call.request.nodes.length === 0 ? ['node-a', 'node-b'] : call.request.nodes;
        for (const name of targets) call.write(this.reply(`id-${name}`, name, call.request.request));
        call.end();
      },
      loadImage: (call: grpc.ServerDuplexStream<LoadImageChunk, ImageCommandReply>) => {
        let nodes: string[] = [];
        let bytes = 0;
        let chunks = 0;
        call.on('data', (message: LoadImageChunk) => {
          if (message.chunk?.$case === 'start') nodes = message.chunk.value.nodes;
          if (message.chunk?.$case === 'data') {
            bytes += message.chunk.value.length;
            chunks += 1;
          }
        });
        call.on('end', () => {
          this.loaded = { nodes, bytes, chunks };
          call.write(this.reply('id-node-a', 'node-a', { op: { $case: 'load', value: {} } }));
          call.end();
        });
      },
    };
    this.server.addService(ControlService, handlers as unknown as grpc.UntypedServiceImplementation);
    await new Promise<void>((resolve, reject) => this.server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())));
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

let dir: string;
let server: FakeImageServer;
let out: string[];
let err: string[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skiff-image-cli-'));
  server = new FakeImageServer();
  await server.start(join(dir, 'skiff.sock'));
  out = [];
  err = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0);
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => err.push(String(chunk)) > 0);
});
afterEach(async () => {
  vi.restoreAllMocks();
  server.stop();
  await rm(dir, { recursive: true, force: true });
});

async function skiff(args: string[]): Promise<Error | undefined> {
  const program = new Command('skiff').option('-H, --host <unix:///path>').exitOverride();
  registerImageCommands(program);
  return program.parseAsync(['node', 'skiff', '--host', `unix://${join(dir, 'skiff.sock')}`, ...args]).then(
    () => undefined,
    (error: unknown) => error as Error,
  );
}

describe('image commands', () => {
  it('image ls prints a table with a NODE column, one line per tag, and reports the failed node', async () => {
    const error = await skiff(['image', 'ls']);
    expect(server.requests).toEqual([{ nodes: [], request: { op: { $case: 'list', value: {} } } }]);
    const lines = out.join('').trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NODE\s+REPOSITORY\s+TAG\s+DIGEST\s+CREATED\s+SIZE\s+CONTAINERS$/);
    expect(lines.slice(1).map((line) => line.split(/\s{2,}/).filter((cell) => !cell.includes('ago')))).toEqual([
      ['node-a', 'registry:5000/demo/web', 'v1', 'abababababab', '4.26MB', '2'],
      ['node-a', 'registry:5000/demo/web', 'latest', 'abababababab', '4.26MB', '2'],
    ]);
    expect(err.join('')).toBe('node-b: cannot pull image "x": registry down\n');
    expect(error?.message).toBe('cannot list images on 1 of 2 node(s): node-b');
  });

  it('image pull --node sends the nodes and prints json rows', async () => {
    expect(await skiff(['image', 'pull', '--node', 'node-a', '--node', 'node-c', 'demo/web:v1', '--format', 'json'])).toBeUndefined();
    expect(server.requests[0]).toEqual({ nodes: ['node-a', 'node-c'], request: { op: { $case: 'pull', value: { reference: 'demo/web:v1' } } } });
    const rows = JSON.parse(out.join('')) as unknown[];
    expect(rows).toEqual([
      { node: 'node-a', nodeId: 'id-node-a', references: ['registry:5000/demo/web:v1', 'registry:5000/demo/web:latest'], digest: DIGEST, sizeBytes: 4_260_000, createdAt: '2026-11-23T14:00:00.000Z', containers: 2 },
      { node: 'node-c', nodeId: 'id-node-c', references: ['registry:5000/demo/web:v1', 'registry:5000/demo/web:latest'], digest: DIGEST, sizeBytes: 4_260_000, createdAt: '2026-11-23T14:00:00.000Z', containers: 2 },
    ]);
  });

  it('image rm -f and image prune -a send their flags and print what each node deleted', async () => {
    expect(await skiff(['image', 'rm', '-f', '--node', 'node-a', 'demo/web:v1'])).toBeUndefined();
    expect(server.requests[0]?.request).toEqual({ op: { $case: 'remove', value: { reference: 'demo/web:v1', force: true } } });
    expect(out.join('').split('\n').map((line) => line.trimEnd())).toEqual([
      'NODE     DELETED',
      'node-a   untagged: registry:5000/demo/web:v1',
      `node-a   deleted: ${DIGEST}`,
      'node-a   reclaimed 1.5kB',
      '',
    ]);
    out.length = 0;
    expect(await skiff(['image', 'prune', '-a', '--node', 'node-a', '--format', 'json'])).toBeUndefined();
    expect(server.requests[1]?.request).toEqual({ op: { $case: 'prune', value: { all: true } } });
    expect(JSON.parse(out.join(''))).toEqual([{ node: 'node-a', nodeId: 'id-node-a', deleted: ['untagged: registry:5000/demo/web:v1', `deleted: ${DIGEST}`], reclaimedBytes: 1500 }]);
  });

  it('image load -i streams the file in chunks after naming the nodes', async () => {
    const archive = Buffer.alloc(LOAD_CHUNK_BYTES * 2 + 10, 7);
    await writeFile(join(dir, 'image.tar'), archive);
    expect(await skiff(['image', 'load', '-i', join(dir, 'image.tar'), '--node', 'node-a'])).toBeUndefined();
    expect(server.loaded).toEqual({ nodes: ['node-a'], bytes: archive.length, chunks: 3 });
    expect(out.join('')).toContain('registry:5000/demo/web');
    const missing = await skiff(['image', 'load', '-i', join(dir, 'nope.tar')]);
    expect(missing?.message).toBe(`cannot read --input ${join(dir, 'nope.tar')}: no such file`);
  });

  it('refuses a bad --format naming the flag', async () => {
    expect((await skiff(['image', 'ls', '--format', 'yaml']))?.message).toBe('cannot use --format "yaml": choose table or json');
  });

  it('helpers: sizes like Docker, repository and tag split, rows sorted by node, load messages bounded', async () => {
    expect([formatSize(0), formatSize(999), formatSize(1500), formatSize(4_263_000), formatSize(1.2e9)]).toEqual(['0B', '999B', '1.5kB', '4.26MB', '1.2GB']);
    expect(repositoryAndTag('localhost:5000/a/b:v1')).toEqual(['localhost:5000/a/b', 'v1']);
    expect(repositoryAndTag(`localhost:5000/a/b@${DIGEST}`)).toEqual(['localhost:5000/a/b', '<none>']);
    expect(repositoryAndTag(undefined)).toEqual(['<none>', '<none>']);
    const reply = (hostname: string): ImageCommandReply => ({ nodeId: hostname, hostname, error: '', response: { images: [{ references: [], digest: DIGEST, sizeBytes: 1, createdMs: 0, containers: 0 }], deleted: [], reclaimedBytes: 0 } });
    expect(imageRows([reply('z'), reply('a')]).map((row) => row.node)).toEqual(['a', 'z']);
    const messages: LoadImageChunk[] = [];
    async function* source(): AsyncIterable<Uint8Array> {
      yield Buffer.alloc(LOAD_CHUNK_BYTES + 1);
    }
    for await (const message of loadMessages(['n'], source())) messages.push(message);
    expect(messages.map((message) => (message.chunk?.$case === 'data' ? message.chunk.value.length : message.chunk?.$case))).toEqual(['start', LOAD_CHUNK_BYTES, 1]);
  });
});
