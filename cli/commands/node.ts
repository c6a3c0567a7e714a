/** `skiff node ls|inspect`. */
import type { Command } from 'commander';
import type { Node } from '../../proto/skiff/v1/objects.js';
import { Node as NodeMessage } from '../../proto/skiff/v1/objects.js';
import { NodeAvailability, NodeRole, NodeState } from '../../proto/skiff/v1/types.js';
import { connect } from '../client.js';
import { parseFormat, printJson, printTable } from '../output.js';

/** The `node ls --format json` row. Field names are a public interface: never rename. */
export interface NodeRow {
  id: string;
  hostname: string;
  role: 'manager' | 'worker';
  status: 'ready' | 'down' | 'unknown';
  availability: 'active' | 'pause' | 'drain';
  addr: string;
  managerStatus: 'leader' | 'reachable' | 'unreachable' | '';
}

export function nodeRow(node: Node): NodeRow {
  const state = node.status?.state;
  const availability = node.spec?.availability;
  const manager = node.managerStatus;
  return {
    id: node.meta?.id ?? '',
    hostname: node.description?.hostname ?? '',
    role: node.role === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker',
    status: state === NodeState.NODE_STATE_READY ? 'ready' : state === NodeState.NODE_STATE_DOWN ? 'down' : 'unknown',
    availability: availability === NodeAvailability.NODE_AVAILABILITY_DRAIN ? 'drain' : availability === NodeAvailability.NODE_AVAILABILITY_PAUSE ? 'pause' : 'active',
    addr: node.status?.addr ?? '',
    managerStatus: manager === undefined ? '' : manager.leader ? 'leader' : manager.reachability === 'reachable' ? 'reachable' : 'unreachable',
  };
}

export function registerNodeCommands(program: Command): void {
  const node = program.command('node').description('manage nodes');
  node
    .command('ls')
    .description('list nodes')
    .option('--format <format>', 'table or json')
    .action(async (options: { format?: string }) => {
      const format = parseFormat(options.format);
      const connection = await connect(program.opts<{ host?: string }>().host);
      try {
        const { nodes } = await connection.call((c) => c.listNodes, {});
        const rows = nodes.map(nodeRow).sort((a, b) => a.hostname.localeCompare(b.hostname));
        if (format === 'json') printJson(rows);
        else printTable(rows, [['ID', (r) => r.id], ['HOSTNAME', (r) => r.hostname], ['STATUS', (r) => r.status], ['AVAILABILITY', (r) => r.availability], ['ROLE', (r) => r.role], ['MANAGER STATUS', (r) => r.managerStatus], ['ADDR', (r) => r.addr]]);
      } finally {
        connection.close();
      }
    });
  node
    .command('inspect')
    .description('show a node in full')
    .argument('<node...>', 'node ids or hostnames')
    .action(async (references: string[]) => {
      const connection = await connect(program.opts<{ host?: string }>().host);
      try {
        const nodes = [];
        for (const reference of references) nodes.push(NodeMessage.toJSON((await connection.call((c) => c.getNode, { node: reference })).node!));
        printJson(nodes);
      } finally {
        connection.close();
      }
    });
}
