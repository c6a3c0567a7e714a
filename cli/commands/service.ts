/** `skiff service create|ls|ps|inspect|scale|rm`. */
import type { Command } from 'commander';
import { Service as ServiceMessage } from '../../proto/skiff/v1/objects.js';
import { collect, withConnection } from '../client.js';
import { parseFormat, printJson } from '../output.js';
import { addHealthOptions, type HealthFlags, withHealthFlags } from './health-flags.js';
import { applyIsolationFlags, type IsolationFlags } from './isolation-flags.js';
import { type CreateFlags, FlagError, parseCount, parseDuration, specFromFlags } from './service-flags.js';
import { waitForConvergence } from './service-progress.js';
import { addUpdateConfigOptions, parseStrategyFlags, registerServiceUpdateCommands } from './service-update.js';
import { parseUpdateConfig, updateConfigFlags } from './update-config-flags.js';
import { printServiceRows, printTaskRows, serviceRow, sortTasks, taskRow } from './service-rows.js';
import { registerServiceLogsCommand } from './service-logs.js';

/** How long create/scale wait for convergence unless --timeout says otherwise. */
const DEFAULT_WAIT = '3m';

export function registerServiceCommands(program: Command): void {
  const service = program.command('service').description('manage services');
  registerServiceLogsCommand(program, service);

  const create = service
    .command('create')
    .description('create a service')
    .argument('<image>', 'image reference, e.g. demo/web:v1')
    .argument('[command...]', 'command and arguments (replace the image CMD)')
    .option('--name <name>', 'service name')
    .option('--replicas <n>', 'number of tasks (replicated mode)', '1')
    .option('--mode <mode>', 'replicated, or global: one task on every eligible node', 'replicated')
    .option('--rebalance <when>', 'auto: move tasks onto nodes that join or recover; manual (default): only on `skiff service rebalance`')
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collect, [])
    .option('-l, --label <KEY=VALUE>', 'service label (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user>', 'user[:group] inside the container')
    .option('--hostname <name>', 'container hostname (default: the task name)')
    .option('--entrypoint <cmd>', 'override the image entrypoint')
    .option('--limit-memory <size>', 'memory limit, e.g. 256m')
    .option('--limit-cpu <cpus>', 'CPU limit, e.g. 0.5')
    .option('--limit-pids <n>', 'process limit')
    .option('--restart-condition <condition>', 'none, on-failure or any')
    .option('--restart-delay <duration>', 'delay between restarts, e.g. 5s')
    .option('--restart-max-attempts <n>', 'restarts before giving up (0 = unlimited)')
    .option('--restart-window <duration>', 'window in which restarts are counted')
    .option('--secret <NAME[,target=…,uid=…,gid=…,mode=…]>', 'mount a secret at /run/secrets/<target> (repeatable)', collect, [])
    .option('--config <NAME[,target=…,uid=…,gid=…,mode=…]>', 'mount a config at its absolute target, default /<name> (repeatable)', collect, [])
    .option('--constraint <expr>', 'placement constraint, e.g. node.labels.zone==a or node.role!=manager (repeatable)', collect, [])
    .option('--placement-pref <spread=node.labels.KEY>', 'spread tasks over the values of a node label, outermost first (repeatable)', collect, [])
    .option('--reserve-cpu <cpus>', 'CPU reserved for each task when placing it, e.g. 0.5')
    .option('--reserve-memory <size>', 'memory reserved for each task when placing it, e.g. 256m')
    .option('--max-replicas-per-node <n>', 'most tasks of the service on one node (0 = no limit)')
    .option('--network <NAME|name=NAME,alias=A…>', 'attach the tasks to an overlay network; alias= gives the service more DNS names on it (repeatable)', collect, [])
    .option('--endpoint-mode <mode>', 'how the service name resolves on its networks: vip (one virtual IP) or dnsrr (the task addresses)')
    .option('-p, --publish <published=P,target=T[,protocol=tcp|udp][,mode=ingress|host]>', 'publish a port; short form P:T[/udp] (repeatable)', collect, [])
    .option('--ingress-traffic <policy>', 'where published ingress ports send connections: cluster (ready tasks on any host, default) or local (only the receiving host\'s tasks; keeps the client address)')
    .option('--read-only', 'mount the container\'s root filesystem read-only')
    .option('--cap-add <capability>', 'add a Linux capability, e.g. NET_ADMIN, or ALL (repeatable)', collect, [])
    .option('--cap-drop <capability>', 'drop a Linux capability, e.g. NET_RAW, or ALL (repeatable)', collect, [])
    .option('--sysctl <KEY=VALUE>', 'namespaced kernel parameter, e.g. net.ipv4.ip_unprivileged_port_start=0 (repeatable)', collect, [])
    .option('--ulimit <NAME=SOFT[:HARD]>', 'process limit, e.g. nofile=1024:2048; -1 = unlimited (repeatable)', collect, [])
    .option('--init', 'run tini as PID 1 to reap zombies and forward signals')
    .option('--stop-signal <signal>', 'signal that asks the task to stop (default SIGTERM)')
    .option('--stop-grace-period <duration>', 'time between the stop signal and SIGKILL (default 10s)')
    .option('--mount <type=…,source=…,target=…[,readonly]>', 'bind, volume or tmpfs mount; tmpfs takes tmpfs-size and tmpfs-mode (repeatable)', collect, [])
    .option('-d, --detach', 'return at once instead of waiting for the tasks to run', false)
    .option('--timeout <duration>', 'how long to wait for convergence', DEFAULT_WAIT)
    .option('--no-resolve-image', 'keep the image tag as given instead of pinning it to the digest the registry has now')
    .passThroughOptions();
  addUpdateConfigOptions(create)
    .action(async (image: string, commandArgs: string[], flags: CreateFlags & HealthFlags & IsolationFlags & { detach: boolean; timeout: string; resolveImage: boolean }) => {
      const spec = applyIsolationFlags(withHealthFlags(specFromFlags(image, commandArgs, flags), flags), flags);
      spec.updateConfig = parseUpdateConfig('update', updateConfigFlags(flags as unknown as Record<string, unknown>, 'update'), undefined);
      spec.rollbackConfig = parseUpdateConfig('rollback', updateConfigFlags(flags as unknown as Record<string, unknown>, 'rollback'), undefined);
      Object.assign(spec, parseStrategyFlags(flags as { updateStrategy?: string; bluegreenHold?: string; canaryReplicas?: string }, spec));
      const timeoutMs = parseDuration('--timeout', flags.timeout);
      await withConnection(program, async (connection) => {
        const created = await connection.call((c) => c.createService, { noResolveImage: !flags.resolveImage, spec });
        process.stdout.write(`${created.service?.meta?.id ?? ''}\n`);
        if (!flags.detach) await waitForConvergence(connection, spec.name, timeoutMs);
      });
    });
  addHealthOptions(create);

  registerServiceUpdateCommands(service, program);

  service
    .command('ls')
    .description('list services')
    .option('--format <format>', 'table or json')
    .action(async (options: { format?: string }) => {
      const format = parseFormat(options.format);
      await withConnection(program, async (connection) => {
        const { services, counts } = await connection.call((c) => c.listServices, {});
        const rows = services
          .map((item) => serviceRow(item, counts.find((count) => count.serviceId === item.meta?.id)))
          .sort((a, b) => a.name.localeCompare(b.name));
        printServiceRows(rows, format);
      });
    });

  service
    .command('ps')
    .description('list the tasks of a service')
    .argument('<service>', 'service name or id')
    .option('--format <format>', 'table or json')
    .action(async (reference: string, options: { format?: string }) => {
      const format = parseFormat(options.format);
      await withConnection(program, async (connection) => {
        const [{ tasks }, { nodes }] = await Promise.all([
          connection.call((c) => c.listTasks, { service: reference, node: '' }),
          connection.call((c) => c.listNodes, {}),
        ]);
        const byId = new Map(nodes.map((node) => [node.meta?.id ?? '', node]));
        printTaskRows(sortTasks(tasks).map((task) => taskRow(task, byId)), format);
      });
    });

  service
    .command('inspect')
    .description('show services in full (JSON)')
    .argument('<service...>', 'service names or ids')
    .option('--format <format>', 'json (the only format)')
    .action(async (references: string[]) => {
      await withConnection(program, async (connection) => {
        const found = [];
        for (const reference of references) {
          const { service: item } = await connection.call((c) => c.getService, { service: reference });
          if (item !== undefined) found.push(ServiceMessage.toJSON(item));
        }
        printJson(found);
      });
    });

  service
    .command('rebalance')
    .description('spread a service\'s tasks evenly again (after nodes joined or recovered), one batch at a time, start-first')
    .argument('<service...>', 'service names or ids')
    .action(async (names: string[]) => {
      await withConnection(program, async (connection) => {
        for (const name of names) {
          await connection.call((c) => c.rebalanceService, { service: name });
          process.stdout.write(`Rebalancing ${name}: tasks move one batch at a time until the spread is even.\n`);
        }
      });
    });

  service
    .command('scale')
    .description('set the replica count of services: skiff service scale web=6 api=2')
    .argument('<service=replicas...>')
    .option('-d, --detach', 'return at once instead of waiting', false)
    .option('--timeout <duration>', 'how long to wait for convergence', DEFAULT_WAIT)
    .action(async (pairs: string[], options: { detach: boolean; timeout: string }) => {
      const targets = pairs.map((pair) => {
        const [name, replicas] = pair.split('=');
        if (name === undefined || name === '' || replicas === undefined) throw new FlagError(`invalid scale "${pair}": use SERVICE=REPLICAS`);
        return { name, replicas: parseCount(`replicas of ${name}`, replicas) };
      });
      const timeoutMs = parseDuration('--timeout', options.timeout);
      await withConnection(program, async (connection) => {
        for (const target of targets) {
          const { service: current } = await connection.call((c) => c.getService, { service: target.name });
          if (current?.spec === undefined || current.spec.mode?.$case !== 'replicated') {
            throw new FlagError(`cannot scale ${target.name}: only replicated services can be scaled`);
          }
          const spec = { ...current.spec, mode: { $case: 'replicated' as const, value: { replicas: target.replicas } } };
          await connection.call((c) => c.updateService, { noResolveImage: false, service: current.meta?.id ?? '', version: current.meta?.version ?? 0, spec });
          process.stdout.write(`${target.name} scaled to ${target.replicas}\n`);
        }
        if (!options.detach) for (const target of targets) await waitForConvergence(connection, target.name, timeoutMs);
      });
    });

  service
    .command('rm')
    .description('remove services')
    .argument('<service...>', 'service names or ids')
    .action(async (references: string[]) => {
      await withConnection(program, async (connection) => {
        for (const reference of references) {
          await connection.call((c) => c.removeService, { service: reference });
          process.stdout.write(`${reference}\n`);
        }
      });
    });
}
