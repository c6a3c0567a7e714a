/** `skiff network create|ls|inspect|rm`: overlay networks that services join with `--network`. */
import type { Command } from 'commander';
import { Network as NetworkMessage } from '../../proto/skiff/v1/objects.js';
import { collect, withConnection } from '../client.js';
import { parseLabels } from './secret.js';
import { parseFormat, printJson, printTable } from '../output.js';

/** The `network ls --format json` row. Field names are a public interface: never rename. */
export interface NetworkRow {
  id: string;
  name: string;
  driver: string;
  /** The allocated subnet; empty until the allocator gave one. */
  subnet: string;
  gateway: string;
  internal: boolean;
  attachable: boolean;
  labels: Record<string, string>;
}

export function networkRow(network: NetworkMessage): NetworkRow {
  return {
    id: network.meta?.id ?? '',
    name: network.spec?.name ?? '',
    driver: network.spec?.driver || 'overlay',
    subnet: network.allocation?.subnet ?? '',
    gateway: network.allocation?.gateway ?? '',
    internal: network.spec?.internal ?? false,
    attachable: network.spec?.attachable ?? false,
    labels: { ...network.spec?.labels },
  };
}

export function registerNetworkCommands(program: Command): void {
  const network = program.command('network').description('manage overlay networks');

  network
    .command('create')
    .description('create an overlay network')
    .argument('<name>', 'network name')
    .option('-d, --driver <driver>', 'network driver (overlay)', 'overlay')
    .option('--subnet <cidr>', "subnet, e.g. 10.1.2.0/24 (default: the next free one of the cluster's address pool)")
    .option('--internal', 'no way out of the network', false)
    .option('--attachable', 'allow standalone containers to attach', false)
    .option('-l, --label <KEY=VALUE>', 'network label (repeatable)', collect, [])
    .action(async (name: string, flags: { driver: string; subnet?: string; internal: boolean; attachable: boolean; label: string[] }) => {
      const spec = { name, labels: parseLabels(flags.label), driver: flags.driver, subnet: flags.subnet ?? '', internal: flags.internal, attachable: flags.attachable };
      await withConnection(program, async (connection) => {
        const created = await connection.call((c) => c.createNetwork, { spec });
        process.stdout.write(`${created.network?.meta?.id ?? ''}\n`);
      });
    });

  network
    .command('ls')
    .description('list networks')
    .option('--format <format>', 'table or json')
    .action(async (flags: { format?: string }) => {
      const format = parseFormat(flags.format);
      await withConnection(program, async (connection) => {
        const rows = (await connection.call((c) => c.listNetworks, {})).networks.map(networkRow).sort((a, b) => a.name.localeCompare(b.name));
        if (format === 'json') {
          printJson(rows);
          return;
        }
        printTable(rows, [
          ['NETWORK ID', (row) => row.id.slice(0, 12)],
          ['NAME', (row) => row.name],
          ['DRIVER', (row) => row.driver],
          ['SUBNET', (row) => row.subnet || '(allocating)'],
          ['INTERNAL', (row) => (row.internal ? 'yes' : 'no')],
        ]);
      });
    });

  network
    .command('inspect')
    .description('show networks in full (JSON)')
    .argument('<network...>', 'network names or ids')
    .action(async (references: string[]) => {
      await withConnection(program, async (connection) => {
        const found: unknown[] = [];
        for (const reference of references) {
          const { network: object } = await connection.call((c) => c.getNetwork, { network: reference });
          if (object !== undefined) found.push(NetworkMessage.toJSON(object));
        }
        printJson(found);
      });
    });

  network
    .command('rm')
    .description('remove networks (refused while a service uses one)')
    .argument('<network...>', 'network names or ids')
    .action(async (references: string[]) => {
      await withConnection(program, async (connection) => {
        for (const reference of references) {
          await connection.call((c) => c.removeNetwork, { network: reference });
          process.stdout.write(`${reference}\n`);
        }
      });
    });
}
