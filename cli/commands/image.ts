/**
 * `skiff image ls|pull|rm|prune|load`: image operations on some nodes (`--node`, repeatable) or
 * every ready node. Managers fan the request out and answer one reply per node; a node that
 * failed is reported on stderr by name and makes the command exit non-zero after the others print.
 */
import { open } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import type { ImageRequest, ImageSummary } from '../../proto/skiff/v1/attach.js';
import type { ImageCommandReply, LoadImageChunk } from '../../proto/skiff/v1/control.js';
import { CliError, collect, withConnection, type ControlConnection } from '../client.js';
import { parseFormat, printJson, printTable, type OutputFormat } from '../output.js';
import { timeAgo } from './secret.js';
import { formatSize } from '../../common/format.js';

/** Deadline of ls, rm and prune: every node answers from its own disk. */
export const IMAGE_QUERY_TIMEOUT_MS = 30_000;
/** Deadline of pull and load: nodes download or unpack whole images. */
export const IMAGE_TRANSFER_TIMEOUT_MS = 30 * 60_000;

/** Archive bytes per LoadImage message: well under gRPC's 4 MiB message limit. */
export const LOAD_CHUNK_BYTES = 256 * 1024;

/** The `image ls --format json` row. Field names are a public interface: never rename. */
export interface ImageRow {
  node: string;
  nodeId: string;
  references: string[];
  digest: string;
  sizeBytes: number;
  /** ISO 8601. */
  createdAt: string;
  containers: number;
}

/** The `image rm|prune --format json` row: what went from one node. */
export interface RemovalRow {
  node: string;
  nodeId: string;
  deleted: string[];
  reclaimedBytes: number;
}

/** What every per-node reply (image, volume) carries. */
export interface NodeReplyShape {
  nodeId: string;
  hostname: string;
  error: string;
}

export const nodeName = (reply: NodeReplyShape): string => reply.hostname || reply.nodeId;

export function imageRows(replies: readonly ImageCommandReply[]): ImageRow[] {
  return replies.flatMap((reply) =>
    (reply.response?.images ?? []).map((image: ImageSummary) => ({
      node: nodeName(reply),
      nodeId: reply.nodeId,
      references: [...image.references],
      digest: image.digest,
      sizeBytes: image.sizeBytes,
      createdAt: new Date(image.createdMs).toISOString(),
      containers: image.containers,
    })),
  ).sort((a, b) => a.node.localeCompare(b.node) || (a.references[0] ?? a.digest).localeCompare(b.references[0] ?? b.digest));
}

export function removalRows(replies: readonly ImageCommandReply[]): RemovalRow[] {
  return replies
    .filter((reply) => reply.error === '')
    .map((reply) => ({ node: nodeName(reply), nodeId: reply.nodeId, deleted: [...(reply.response?.deleted ?? [])], reclaimedBytes: reply.response?.reclaimedBytes ?? 0 }))
    .sort((a, b) => a.node.localeCompare(b.node));
}

/** `registry/repo:tag` split for the table; `<none>` for an untagged image (`repo@digest` names). */
export function repositoryAndTag(reference: string | undefined): [string, string] {
  if (reference === undefined) return ['<none>', '<none>'];
  const at = reference.indexOf('@');
  if (at !== -1) return [reference.slice(0, at), '<none>'];
  const colon = reference.lastIndexOf(':');
  return colon > reference.lastIndexOf('/') ? [reference.slice(0, colon), reference.slice(colon + 1)] : [reference, '<none>'];
}

export function printImages(rows: readonly ImageRow[], format: OutputFormat, nowMs = Date.now()): void {
  if (format === 'json') return printJson(rows);
  // One line per name, as `docker images` does; an untagged image is one `<none>` line.
  const lines = rows.flatMap((row) => (row.references.length === 0 ? [undefined] : row.references).map((reference) => ({ row, name: repositoryAndTag(reference) })));
  printTable(lines, [
    ['NODE', (line) => line.row.node],
    ['REPOSITORY', (line) => line.name[0]],
    ['TAG', (line) => line.name[1]],
    ['DIGEST', (line) => line.row.digest.slice('sha256:'.length, 'sha256:'.length + 12)],
    ['CREATED', (line) => timeAgo(Date.parse(line.row.createdAt), nowMs)],
    ['SIZE', (line) => formatSize(line.row.sizeBytes)],
    ['CONTAINERS', (line) => String(line.row.containers)],
  ]);
}

export function printRemovals(rows: readonly RemovalRow[], format: OutputFormat): void {
  if (format === 'json') return printJson(rows);
  const lines = rows.flatMap((row) => [...row.deleted.map((entry) => ({ node: row.node, entry })), { node: row.node, entry: `reclaimed ${formatSize(row.reclaimedBytes)}` }]);
  printTable(lines, [['NODE', (line) => line.node], ['DELETED', (line) => line.entry]]);
}

/** Writes each failed node's error to stderr; throws when any failed (after the rest was printed). */
export function reportNodeErrors(replies: readonly NodeReplyShape[], action: string): void {
  const failed = replies.filter((reply) => reply.error !== '');
  for (const reply of failed) process.stderr.write(`${nodeName(reply)}: ${reply.error}\n`);
  if (failed.length > 0) throw new CliError(`cannot ${action} on ${failed.length} of ${replies.length} node(s): ${failed.map(nodeName).join(', ')}`);
  if (replies.length === 0) throw new CliError(`cannot ${action}: no node answered (no ready node matched)`);
}

/** Every reply of a per-node server stream, or a CliError naming why it ended. */
export function collectReplies<R>(stream: NodeJS.ReadableStream, timeoutMs: number): Promise<R[]> {
  return new Promise((resolve, reject) => {
    const replies: R[] = [];
    stream.on('data', (reply: R) => replies.push(reply));
    stream.on('end', () => resolve(replies));
    stream.on('error', (error: Error & { details?: string; code?: number }) =>
      reject(new CliError(error.code === grpc.status.DEADLINE_EXCEEDED ? `no answer from the managers within ${timeoutMs / 1000} s` : error.details || error.message)),
    );
  });
}

/** One ImageCommand round: the request to the chosen nodes, every node's reply. */
export async function imageCommand(connection: ControlConnection, nodes: string[], request: ImageRequest): Promise<ImageCommandReply[]> {
  const timeoutMs = request.op?.$case === 'pull' ? IMAGE_TRANSFER_TIMEOUT_MS : IMAGE_QUERY_TIMEOUT_MS;
  return collectReplies<ImageCommandReply>((await connection.reachable()).imageCommand({ nodes, request }, { deadline: Date.now() + timeoutMs }), timeoutMs);
}

/** The LoadImage messages: the nodes first, then the archive in chunks of at most LOAD_CHUNK_BYTES. */
export async function* loadMessages(nodes: string[], archive: AsyncIterable<Uint8Array>): AsyncIterable<LoadImageChunk> {
  yield { chunk: { $case: 'start', value: { nodes } } };
  for await (const piece of archive) {
    for (let offset = 0; offset < piece.length; offset += LOAD_CHUNK_BYTES) {
      yield { chunk: { $case: 'data', value: piece.subarray(offset, offset + LOAD_CHUNK_BYTES) } };
    }
  }
}

/** Streams an archive to the managers with backpressure, and collects every node's reply. */
export async function loadImage(connection: ControlConnection, nodes: string[], archive: AsyncIterable<Uint8Array>): Promise<ImageCommandReply[]> {
  const call = (await connection.reachable()).loadImage({ deadline: Date.now() + IMAGE_TRANSFER_TIMEOUT_MS });
  const replies = collectReplies<ImageCommandReply>(call, IMAGE_TRANSFER_TIMEOUT_MS);
  replies.catch(() => undefined); // observed below, after the upload
  try {
    for await (const message of loadMessages(nodes, archive)) {
      if (!call.write(message)) await new Promise<void>((resolve) => call.once('drain', resolve));
    }
    call.end();
  } catch (error) {
    call.cancel();
    throw error;
  }
  return replies;
}

async function* readArchive(source: string): AsyncIterable<Uint8Array> {
  if (source === '-') {
    for await (const chunk of process.stdin) yield Buffer.from(chunk as Buffer);
    return;
  }
  const file = await open(source, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new CliError(`cannot read --input ${source}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  try {
    for await (const chunk of file.createReadStream({ highWaterMark: LOAD_CHUNK_BYTES })) yield chunk as Buffer;
  } finally {
    await file.close();
  }
}

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description('manage images on the nodes');
  const NODE_FLAG = '--node <node>';
  const NODE_HELP = 'node id, id prefix or hostname (repeatable; default: every ready node)';

  image
    .command('ls')
    .description('list images on the nodes')
    .option(NODE_FLAG, NODE_HELP, collect, [] as string[])
    .option('--format <format>', 'table or json')
    .action(async (flags: { node: string[]; format?: string }) => {
      const format = parseFormat(flags.format);
      const replies = await withConnection(program, (connection) => imageCommand(connection, flags.node, { op: { $case: 'list', value: {} } }));
      printImages(imageRows(replies), format);
      reportNodeErrors(replies, 'list images');
    });

  image
    .command('pull')
    .description('pull an image on the nodes (verified by digest)')
    .argument('<image>', 'image reference, e.g. demo/web:v1')
    .option(NODE_FLAG, NODE_HELP, collect, [] as string[])
    .option('--format <format>', 'table or json')
    .action(async (reference: string, flags: { node: string[]; format?: string }) => {
      const format = parseFormat(flags.format);
      const replies = await withConnection(program, (connection) => imageCommand(connection, flags.node, { op: { $case: 'pull', value: { reference } } }));
      printImages(imageRows(replies), format);
      reportNodeErrors(replies, `pull ${reference}`);
    });

  image
    .command('rm')
    .description('remove an image (a tag, a repo@digest or an id) from the nodes')
    .argument('<image>', 'image reference or id')
    .option('-f, --force', 'remove it even when a container on the node uses it', false)
    .option(NODE_FLAG, NODE_HELP, collect, [] as string[])
    .option('--format <format>', 'table or json')
    .action(async (reference: string, flags: { node: string[]; force: boolean; format?: string }) => {
      const format = parseFormat(flags.format);
      const replies = await withConnection(program, (connection) => imageCommand(connection, flags.node, { op: { $case: 'remove', value: { reference, force: flags.force } } }));
      printRemovals(removalRows(replies), format);
      reportNodeErrors(replies, `remove ${reference}`);
    });

  image
    .command('prune')
    .description('remove untagged images no container uses (with -a: every unused image)')
    .option('-a, --all', 'remove every image no container uses, not only untagged ones', false)
    .option(NODE_FLAG, NODE_HELP, collect, [] as string[])
    .option('--format <format>', 'table or json')
    .action(async (flags: { node: string[]; all: boolean; format?: string }) => {
      const format = parseFormat(flags.format);
      const replies = await withConnection(program, (connection) => imageCommand(connection, flags.node, { op: { $case: 'prune', value: { all: flags.all } } }));
      printRemovals(removalRows(replies), format);
      reportNodeErrors(replies, 'prune images');
    });

  image
    .command('load')
    .description('load images from a docker-save or OCI archive (tar or tar.gz) onto the nodes')
    .option('-i, --input <file>', 'archive to read ("-" = stdin)', '-')
    .option(NODE_FLAG, NODE_HELP, collect, [] as string[])
    .option('--format <format>', 'table or json')
    .action(async (flags: { input: string; node: string[]; format?: string }) => {
      const format = parseFormat(flags.format);
      if (flags.input === '-' && process.stdin.isTTY) throw new CliError('cannot load: give the archive with -i FILE or on stdin');
      const replies = await withConnection(program, (connection) => loadImage(connection, flags.node, readArchive(flags.input)));
      printImages(imageRows(replies), format);
      reportNodeErrors(replies, 'load the archive');
    });
}
