/**
 * `skiff volume ls|rm|prune`: the named local volumes of some nodes (`--node`, repeatable) or of
 * every ready node, like `docker volume`. A volume lives on one node; the same name on two nodes
 * is two volumes. A node that failed is reported on stderr by name, and the command exits
 * non-zero after the others printed.
 */
import type { Command } from 'commander';
import type { VolumeRequest } from '../../proto/skiff/v1/attach.js';
import type { VolumeCommandReply } from '../../proto/skiff/v1/control.js';
import { collect, withConnection, type ControlConnection } from '../client.js';
import { parseFormat, printJson, printTable, type OutputFormat } from '../output.js';
import { collectReplies, IMAGE_QUERY_TIMEOUT_MS, nodeName, reportNodeErrors } from './image.js';
import { timeAgo } from './secret.js';

/** The `volume ls --format json` row. Field names are a public interface: never rename. */
export interface VolumeRow {
  node: string;
  nodeId: string;
  name: string;
  /** ISO 8601. */
  createdAt: string;
  /** Tasks on the node that mount it. */
  tasks: number;
}

/** The `volume rm|prune --format json` row. */
export interface VolumeRemovalRow {
  node: string;
  nodeId: string;
  removed: string[];
}

export function volumeRows(replies: readonly VolumeCommandReply[]): VolumeRow[] {
  return replies
    .flatMap((reply) => (reply.response?.volumes ?? []).map((volume) => ({ node: nodeName(reply), nodeId: reply.nodeId, name: volume.name, createdAt: new Date(volume.createdMs).toISOString(), tasks: volume.tasks })))
    .sort((a, b) => a.name.localeCompare(b.name) || a.node.localeCompare(b.node));
}

export function volumeRemovalRows(replies: readonly VolumeCommandReply[]): VolumeRemovalRow[] {
  return replies
    .filter((reply) => reply.error === '')
    .map((reply) => ({ node: nodeName(reply), nodeId: reply.nodeId, removed: [...(reply.response?.removed ?? [])] }))
    .sort((a, b) => a.node.localeCompare(b.node));
}

export function printVolumes(rows: readonly VolumeRow[], format: OutputFormat, nowMs = Date.now()): void {
  if (format === 'json') return printJson(rows);
  printTable(rows, [
    ['NODE', (row) => row.node],
    ['VOLUME NAME', (row) => row.name],
    ['CREATED', (row) => timeAgo(Date.parse(row.createdAt), nowMs)],
    ['TASKS', (row) => String(row.tasks)],
  ]);
}

function printRemovedVolumes(rows: readonly VolumeRemovalRow[], format: OutputFormat): void {
  if (format === 'json') return printJson(rows);
  printTable(
    rows.flatMap((row) => row.removed.map((name) => ({ node: row.node, name }))),
    [
      ['NODE', (line) => line.node],
      ['REMOVED', (line) => line.name],
    ],
  );
}

/** One VolumeCommand round: the request to the chosen nodes, every node's reply. */
export async function volumeCommand(connection: ControlConnection, nodes: string[], request: VolumeRequest): Promise<VolumeCommandReply[]> {
  return collectReplies<VolumeCommandReply>((await connection.reachable()).volumeCommand({ nodes, request }, { deadline: Date.now() + IMAGE_QUERY_TIMEOUT_MS }), IMAGE_QUERY_TIMEOUT_MS);
}

export function registerVolumeCommands(program: Command): void {
  const volume = program.command('volume').description('manage named local volumes on the nodes');
  const NODE_FLAG = '--node <node>';
  const NODE_HELP = 'node id, id prefix or hostname (repeatable; default: every ready node)';

  volume
    .command('ls')
    .description('list named volumes on the nodes')
    .option(NODE_FLAG, NODE_HELP, collect, [] as string[])
    .option('--format <format>', 'table or json')
    .action(async (flags: { node: string[]; format?: string }) => {
      const format = parseFormat(flags.format);
      const replies = await withConnection(program, (connection) => volumeCommand(connection, flags.node, { op: { $case: 'list', value: {} } }));
      printVolumes(volumeRows(replies), format);
      reportNodeErrors(replies, 'list volumes');
    });

  volume
    .command('rm')
    .description('remove named volumes from the nodes that have them')
    .argument('<volume...>', 'volume names')
    .option('-f, --force', 'remove it even when a task on the node mounts it', false)
    .option(NODE_FLAG, NODE_HELP, collect, [] as string[])
    .option('--format <format>', 'table or json')
    .action(async (names: string[], flags: { node: string[]; force: boolean; format?: string }) => {
      const format = parseFormat(flags.format);
      await withConnection(program, async (connection) => {
        // Only the nodes that have the volume are asked to remove it; a name no node has is an error.
        const listed = await volumeCommand(connection, flags.node, { op: { $case: 'list', value: {} } });
        reportNodeErrors(listed, 'list volumes');
        const rows: VolumeRemovalRow[] = [];
        const failures: VolumeCommandReply[] = [];
        for (const name of names) {
          const holders = listed.filter((reply) => reply.response?.volumes.some((candidate) => candidate.name === name));
          if (holders.length === 0) {
            failures.push({ nodeId: '', hostname: name, response: undefined, error: 'no such volume on any node asked' });
            continue;
          }
          const replies = await volumeCommand(connection, holders.map((reply) => reply.nodeId), { op: { $case: 'remove', value: { name, force: flags.force } } });
          rows.push(...volumeRemovalRows(replies));
          failures.push(...replies.filter((reply) => reply.error !== ''));
        }
        printRemovedVolumes(rows, format);
        if (failures.length > 0) reportNodeErrors(failures, 'remove volumes');
      });
    });

  volume
    .command('prune')
    .description('remove every volume no task on its node mounts')
    .option(NODE_FLAG, NODE_HELP, collect, [] as string[])
    .option('--format <format>', 'table or json')
    .action(async (flags: { node: string[]; format?: string }) => {
      const format = parseFormat(flags.format);
      const replies = await withConnection(program, (connection) => volumeCommand(connection, flags.node, { op: { $case: 'prune', value: {} } }));
      printRemovedVolumes(volumeRemovalRows(replies), format);
      reportNodeErrors(replies, 'prune volumes');
    });
}
