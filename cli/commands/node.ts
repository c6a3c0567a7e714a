/** `skiff node ls|inspect|promote|demote|update|rm`. */
import type { Command } from 'commander';
import type { Node } from '../../proto/skiff/v1/objects.js';
import { Node as NodeMessage } from '../../proto/skiff/v1/objects.js';
import { NodeAvailability, NodeRole, NodeState } from '../../proto/skiff/v1/types.js';
import type { NodeSpec } from '../../proto/skiff/v1/specs.js';
import { CliError, connectFor } from '../client.js';
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
      const connection = await connectFor(program);
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
      const connection = await connectFor(program);
      try {
        const nodes = [];
        for (const reference of references) nodes.push(NodeMessage.toJSON((await connection.call((c) => c.getNode, { node: reference })).node!));
        printJson(nodes);
      } finally {
        connection.close();
      }
    });

  /** Reads each node, changes its spec with `change`, and writes it back with the version read. */
  const updateEach = async (references: string[], change: (spec: NodeSpec) => NodeSpec, done: (name: string) => string): Promise<void> => {
    const connection = await connectFor(program);
    try {
      for (const reference of references) {
        const current = (await connection.call((c) => c.getNode, { node: reference })).node;
        if (current?.spec === undefined) throw new CliError(`cannot update node "${reference}": it has no spec`);
        await connection.call((c) => c.updateNode, { node: current.meta?.id ?? reference, version: current.meta?.version ?? 0, spec: change(current.spec) });
        process.stdout.write(`${done(current.description?.hostname || reference)}\n`);
      }
    } finally {
      connection.close();
    }
  };
  node
    .command('promote')
    .description('make workers managers (each joins the Raft group as a learner, then votes once caught up)')
    .argument('<node...>', 'node ids or hostnames')
    .action(async (references: string[]) => {
      await updateEach(references, (spec) => ({ ...spec, desiredRole: NodeRole.NODE_ROLE_MANAGER }), (name) => `Node ${name} promoted to a manager.`);
    });
  node
    .command('demote')
    .description('make managers workers; refused when the remaining managers would lose quorum')
    .argument('<node...>', 'node ids or hostnames')
    .action(async (references: string[]) => {
      await updateEach(references, (spec) => ({ ...spec, desiredRole: NodeRole.NODE_ROLE_WORKER }), (name) => `Manager ${name} demoted to a worker.`);
    });
  node
    .command('update')
    .description("change a node's availability or labels")
    .argument('<node>', 'node id or hostname')
    .option('--availability <availability>', 'active, pause or drain')
    .option('--label-add <key=value>', 'add or change a label (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option('--label-rm <key>', 'remove a label (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .action(async (reference: string, flags: { availability?: string; labelAdd: string[]; labelRm: string[] }) => {
      const availability = flags.availability === undefined ? undefined : AVAILABILITIES[flags.availability];
      if (flags.availability !== undefined && availability === undefined) throw new CliError(`cannot update node: --availability "${flags.availability}" is not active, pause or drain`);
      const labels = (spec: NodeSpec): Record<string, string> => {
        const next = { ...spec.labels };
        for (const pair of flags.labelAdd) {
          const separator = pair.indexOf('=');
          if (separator <= 0) throw new CliError(`cannot update node: --label-add "${pair}" is not key=value`);
          next[pair.slice(0, separator)] = pair.slice(separator + 1);
        }
        for (const key of flags.labelRm) delete next[key];
        return next;
      };
      await updateEach([reference], (spec) => ({ ...spec, ...(availability === undefined ? {} : { availability }), labels: labels(spec) }), (name) => `Node ${name} updated.`);
    });
  node
    .command('rm')
    .description('remove nodes from the cluster; their certificates are refused from then on')
    .argument('<node...>', 'node ids or hostnames')
    .option('-f, --force', 'remove a node that is still ready (cuts it off at once)', false)
    .action(async (references: string[], flags: { force: boolean }) => {
      const connection = await connectFor(program);
      try {
        for (const reference of references) {
          await connection.call((c) => c.removeNode, { node: reference, force: flags.force });
          process.stdout.write(`Node ${reference} removed.\n`);
        }
      } finally {
        connection.close();
      }
    });
}

const AVAILABILITIES: Record<string, NodeAvailability> = {
  active: NodeAvailability.NODE_AVAILABILITY_ACTIVE,
  pause: NodeAvailability.NODE_AVAILABILITY_PAUSE,
  drain: NodeAvailability.NODE_AVAILABILITY_DRAIN,
};
