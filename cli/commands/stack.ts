/**
 * `skiff stack deploy|ls|services|ps|rm`: Compose files deployed as stacks (DESIGN §11). A stack
 * is the objects that carry its label, com.docker.stack.namespace=NAME, as in Swarm: stacks that
 * `docker stack deploy` made are listed and removed here, and the other way round.
 */
import type { Command } from 'commander';
import type { ListServicesResponse } from '../../proto/skiff/v1/control.js';
import type { Service } from '../../proto/skiff/v1/objects.js';
import { collect, type ControlConnection, withConnection } from '../client.js';
import { parseFormat, printJson, printTable } from '../output.js';
import { NAMESPACE_LABEL } from './compose.js';
import { printServiceRows, printTaskRows, serviceRow, sortTasks, taskRow } from './service-rows.js';
import { applyDeploy, type DeployFlags, inStack, planDeploy } from './stack-deploy.js';

/** How long `stack rm` retries a network whose tasks are still stopping. */
const NETWORK_RELEASE_DEADLINE_MS = 60_000;
const NETWORK_RELEASE_POLL_MS = 250;

/** The `stack ls --format json` row. Field names are a public interface: never rename. */
export interface StackRow {
  name: string;
  /** How many services the stack has. */
  services: number;
}

/** One row per stack that has services, by name. */
export function stackRows(services: readonly Service[]): StackRow[] {
  const counts = new Map<string, number>();
  for (const service of services) {
    const stack = service.spec?.labels[NAMESPACE_LABEL];
    if (stack !== undefined) counts.set(stack, (counts.get(stack) ?? 0) + 1);
  }
  return [...counts].map(([name, services]) => ({ name, services })).sort((a, b) => a.name.localeCompare(b.name));
}

const write = (line: string): void => void process.stdout.write(`${line}\n`);
const warn = (line: string): void => void process.stderr.write(`${line}\n`);

/** Removes every service, secret, config and network of `stack` (external objects carry no label and stay). */
async function removeStack(connection: ControlConnection, stack: string): Promise<boolean> {
  const [{ services }, { secrets }, { configs }, { networks }] = await Promise.all([
    connection.call((c) => c.listServices, {}),
    connection.call((c) => c.listSecrets, {}),
    connection.call((c) => c.listConfigs, {}),
    connection.call((c) => c.listNetworks, {}),
  ]);
  const mine = <T extends { spec?: { name: string; labels: Record<string, string> } | undefined }>(objects: readonly T[]): T[] =>
    objects.filter((object) => inStack(object, stack)).sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? ''));
  const found = [mine(services), mine(secrets), mine(configs), mine(networks)];
  if (found.every((objects) => objects.length === 0)) return false;
  for (const service of mine(services)) {
    write(`Removing service ${service.spec?.name ?? ''}`);
    await connection.call((c) => c.removeService, { service: service.meta?.id ?? '' });
  }
  for (const secret of mine(secrets)) {
    write(`Removing secret ${secret.spec?.name ?? ''}`);
    await connection.call((c) => c.removeSecret, { secret: secret.meta?.id ?? '' });
  }
  for (const config of mine(configs)) {
    write(`Removing config ${config.spec?.name ?? ''}`);
    await connection.call((c) => c.removeConfig, { config: config.meta?.id ?? '' });
  }
  for (const network of mine(networks)) {
    write(`Removing network ${network.spec?.name ?? ''}`);
    await removeNetworkOnceReleased(connection, network.meta?.id ?? '');
  }
  return true;
}

/** The tasks of the removed services may still hold addresses on a network for a moment: retry until they let go. */
async function removeNetworkOnceReleased(connection: ControlConnection, network: string): Promise<void> {
  const deadline = Date.now() + NETWORK_RELEASE_DEADLINE_MS;
  for (;;) {
    try {
      await connection.call((c) => c.removeNetwork, { network });
      return;
    } catch (error) {
      if (!(error instanceof Error) || !error.message.includes('still stopping') || Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, NETWORK_RELEASE_POLL_MS));
  }
}

/** The services of `stack`, by name, and the replica counts of all. */
async function stackServices(connection: ControlConnection, stack: string): Promise<ListServicesResponse> {
  const { services, counts } = await connection.call((c) => c.listServices, {});
  return { services: services.filter((service) => inStack(service, stack)).sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? '')), counts };
}

export function registerStackCommands(program: Command): void {
  const stack = program.command('stack').description('deploy Compose files as stacks, and manage them');

  stack
    .command('deploy')
    .description('create or update a stack from Compose files (the deploy: section included)')
    .argument('<stack>', 'stack name: its objects are named STACK_KEY')
    .requiredOption('-c, --compose-file <file>', 'Compose file, or - for stdin (repeatable: later files override earlier ones)', collect, [])
    .option('--prune', "remove the stack's services that the files no longer have", false)
    .option('--resolve-image <when>', 'always: pin image tags to the digests the registry has now; never: keep them as written', 'always')
    .option('-d, --detach', 'return once everything is written instead of waiting for the services', false)
    .option('--timeout <duration>', 'how long to wait for each service', '3m')
    .action(async (name: string, flags: DeployFlags) => {
      const planned = await planDeploy(name, flags, warn);
      await withConnection(program, (connection) => applyDeploy(connection, planned, write));
    });

  stack
    .command('ls')
    .description('list stacks')
    .option('--format <format>', 'table or json')
    .action(async (options: { format?: string }) => {
      const format = parseFormat(options.format);
      await withConnection(program, async (connection) => {
        const rows = stackRows((await connection.call((c) => c.listServices, {})).services);
        if (format === 'json') printJson(rows);
        else printTable(rows, [['NAME', (r) => r.name], ['SERVICES', (r) => String(r.services)]]);
      });
    });

  stack
    .command('services')
    .description('list the services of a stack')
    .argument('<stack>', 'stack name')
    .option('--format <format>', 'table or json')
    .action(async (name: string, options: { format?: string }) => {
      const format = parseFormat(options.format);
      await withConnection(program, async (connection) => {
        const { services, counts } = await stackServices(connection, name);
        if (services.length === 0 && format === 'table') warn(`Nothing found in stack: ${name}`);
        else printServiceRows(services.map((item) => serviceRow(item, counts.find((entry) => entry.serviceId === item.meta?.id))), format);
      });
    });

  stack
    .command('ps')
    .description('list the tasks of a stack')
    .argument('<stack>', 'stack name')
    .option('--format <format>', 'table or json')
    .action(async (name: string, options: { format?: string }) => {
      const format = parseFormat(options.format);
      await withConnection(program, async (connection) => {
        const [{ services }, { nodes }] = await Promise.all([stackServices(connection, name), connection.call((c) => c.listNodes, {})]);
        const byId = new Map(nodes.map((node) => [node.meta?.id ?? '', node]));
        const rows = [];
        for (const service of services) {
          const { tasks } = await connection.call((c) => c.listTasks, { service: service.meta?.id ?? '', node: '' });
          rows.push(...sortTasks(tasks).map((task) => taskRow(task, byId)));
        }
        if (services.length === 0 && format === 'table') warn(`Nothing found in stack: ${name}`);
        else printTaskRows(rows, format);
      });
    });

  stack
    .command('rm')
    .description("remove stacks: their services, then secrets, configs and networks (external ones stay)")
    .argument('<stack...>', 'stack names')
    .action(async (names: string[]) => {
      await withConnection(program, async (connection) => {
        for (const name of names) if (!(await removeStack(connection, name))) warn(`Nothing found in stack: ${name}`);
      });
    });
}
