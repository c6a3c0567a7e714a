// `skiff lab …`: parse, call deploy/lab, print. No lab logic lives here.
import type { Command } from 'commander';
import {
  labHeal,
  labPartition,
  DEFAULT_LAB_NAME,
  DEFAULT_REGISTRY_PORT,
  labDown,
  labExecInteractive,
  labKill,
  labRestart,
  labStart,
  labStatus,
  labUp,
  type LabStatus,
  LAB_NAME_PATTERN,
  readLabState,
} from '../../deploy/lab/index.js';
import { parseDuration } from './init.js';
import { readConfig } from '../context.js';

/** The lab a command acts on without --name: $SKIFF_LAB, else "lab". */
export function defaultLabName(): string {
  const fromEnvironment = process.env['SKIFF_LAB'];
  return fromEnvironment !== undefined && fromEnvironment !== '' ? fromEnvironment : DEFAULT_LAB_NAME;
}

/**
 * The lab a command acts on: --name, else $SKIFF_LAB, else the lab the CLI's current context
 * points at (`lab up` names its context after the lab), else "lab".
 */
export async function labNameFor(flag: string | undefined): Promise<string> {
  if (flag !== undefined) return flag;
  const fromEnvironment = process.env['SKIFF_LAB'];
  if (fromEnvironment !== undefined && fromEnvironment !== '') return fromEnvironment;
  const current = await readConfig().then((config) => config.current).catch(() => '');
  if (current !== '' && LAB_NAME_PATTERN.test(current) && (await readLabState(current).catch(() => undefined)) !== undefined) return current;
  return DEFAULT_LAB_NAME;
}

/** Parses a whole, non-negative decimal number for option `field`; anything else is an error naming it. */
export function parseCount(field: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`cannot use ${field} "${text}": expected a whole number >= 0`);
  return Number(text);
}

/** The table `skiff lab status` prints. */
export function formatStatusTable(status: LabStatus): string {
  const rows = [['NAME', 'ADDR', 'ROLE', 'PID', 'DATADIR'], ...status.hosts.map((host) => [host.name, host.addr, host.role, String(host.pid), host.dataDir])];
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  const lines = rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  '));
  return `${lines.join('\n')}\nregistry: ${status.registry}${status.registryPid === 0 ? ' (not running)' : ''}\n`;
}

function fail(command: Command, error: unknown): never {
  return command.error(`skiff ${command.parent?.name() === 'lab' ? 'lab ' : ''}${command.name()}: ${error instanceof Error ? error.message : String(error)}`, { exitCode: 1 });
}

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Registers `skiff lab up|down|status|exec|restart|kill|start` on `program`. */
export function registerLabCommands(program: Command): void {
  const lab = program.command('lab').description('a real multi-host cluster on this machine: network namespaces, a registry, one skiffd per host');
  const nameOption = ['--name <lab>', 'lab name ([a-z0-9]{1,8}; default $SKIFF_LAB or "lab")'] as const;

  lab
    .command('up')
    .description('create (or complete) a lab and point the CLI at it')
    .option('--managers <count>', 'manager hosts (default 1, or the existing lab\'s)')
    .option('--workers <count>', 'worker hosts (default 2, or the existing lab\'s)')
    .option(...nameOption)
    .option('--registry-port <port>', 'port of the lab registry on the lab bridge', String(DEFAULT_REGISTRY_PORT))
    .option('--cert-expiry <duration>', 'lifetime of node certificates of a new lab, e.g. 2m (default 90d)')
    .action(async (flags: { managers?: string; workers?: string; name?: string; registryPort: string; certExpiry?: string }, command: Command) => {
      try {
        const name = await labNameFor(flags.name);
        const state = await labUp({
          name,
          ...(flags.managers === undefined ? {} : { managers: parseCount('--managers', flags.managers) }),
          ...(flags.workers === undefined ? {} : { workers: parseCount('--workers', flags.workers) }),
          registryPort: parseCount('--registry-port', flags.registryPort),
          ...(flags.certExpiry === undefined ? {} : { certExpiryMs: parseDuration('cert-expiry', flags.certExpiry) }),
          log: say,
        });
        say(`lab ${name} is up; CLI context "${state.contextName}" is current. Try: skiff node ls`);
      } catch (error) {
        fail(command, error);
      }
    });

  lab
    .command('down')
    .description('remove every namespace, link, mount, cgroup, process and file of a lab, and its CLI context')
    .option(...nameOption)
    .action(async (flags: { name?: string }, command: Command) => {
      try {
        await labDown(await labNameFor(flags.name), say);
      } catch (error) {
        fail(command, error);
      }
    });

  lab
    .command('status')
    .description('list the lab\'s hosts (name, addr, role, skiffd pid, dataDir) and its registry')
    .option(...nameOption)
    .option('--format <format>', 'table or json', 'table')
    .action(async (flags: { name?: string; format: string }, command: Command) => {
      try {
        if (flags.format !== 'table' && flags.format !== 'json') throw new Error(`cannot use format "${flags.format}": expected table or json`);
        const status = await labStatus(await labNameFor(flags.name));
        process.stdout.write(flags.format === 'json' ? `${JSON.stringify(status, null, 2)}\n` : formatStatusTable(status));
      } catch (error) {
        fail(command, error);
      }
    });

  lab
    .command('exec')
    .description('run a command inside a lab host\'s network namespace: skiff lab exec h1 -- ip addr')
    .argument('<host>', 'lab host, e.g. h1')
    .argument('<command...>', 'command and its arguments (put them after --)')
    .option(...nameOption)
    .allowUnknownOption()
    .action(async (host: string, argv: string[], flags: { name?: string }, command: Command) => {
      try {
        process.exitCode = await labExecInteractive(await labNameFor(flags.name), host, argv);
      } catch (error) {
        fail(command, error);
      }
    });

  const hostCommands: Array<[string, string, (name: string, host: string) => Promise<string>]> = [
    ['restart', 'graceful restart of a host\'s skiffd (SIGTERM, wait, start); its containers keep running', async (name, host) => `${host}: skiffd restarted (pid ${(await labRestart(name, host)).pid})`],
    ['kill', 'crash a host: SIGKILL its skiffd and every container process', async (name, host) => `${host}: killed ${await labKill(name, host)} processes`],
    ['start', 'boot a killed host\'s skiffd again', async (name, host) => `${host}: skiffd running (pid ${(await labStart(name, host)).pid})`],
  ];
  lab
    .command('partition')
    .description('cut hosts off from the other lab hosts, both ways (the CLI and registry stay reachable)')
    .argument('<hosts...>', 'lab hosts, e.g. h4 h5')
    .option(...nameOption)
    .action(async (hosts: string[], flags: { name?: string }, command: Command) => {
      try {
        await labPartition(await labNameFor(flags.name), hosts);
        say(`partitioned ${hosts.join(', ')} from the other hosts`);
      } catch (error) {
        fail(command, error);
      }
    });
  lab
    .command('heal')
    .description('restore every link between lab hosts')
    .option(...nameOption)
    .action(async (flags: { name?: string }, command: Command) => {
      try {
        await labHeal(await labNameFor(flags.name));
        say('healed: every lab host reaches every other');
      } catch (error) {
        fail(command, error);
      }
    });
  for (const [verb, description, action] of hostCommands) {
    lab
      .command(verb)
      .description(description)
      .argument('<host>', 'lab host, e.g. h2')
      .option(...nameOption)
      .action(async (host: string, flags: { name?: string }, command: Command) => {
        try {
          say(await action(await labNameFor(flags.name), host));
        } catch (error) {
          fail(command, error);
        }
      });
  }
}
