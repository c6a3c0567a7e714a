/** skiff: the CLI. Parses, calls, prints; no business logic lives here. */
import { Command, CommanderError } from 'commander';
import { SKIFF_VERSION } from '../common/version.js';

/**
 * Command groups, each loaded only when used: the lab and init pull in certificate building
 * and the lab's system tooling, which every other command would otherwise pay for at start-up.
 */
const GROUPS: Record<string, () => Promise<(program: Command) => void>> = {
  config: async () => (await import('./commands/config.js')).registerConfigCommands,
  autolock: async () => (await import('./commands/autolock.js')).registerAutolockCommands,
  unlock: async () => (await import('./commands/autolock.js')).registerAutolockCommands,
  ca: async () => (await import('./commands/ca.js')).registerCaCommands,
  context: async () => (await import('./commands/context.js')).registerContextCommands,
  image: async () => (await import('./commands/image.js')).registerImageCommands,
  init: async () => (await import('./commands/init.js')).registerInitCommand,
  join: async () => (await import('./commands/join.js')).registerJoinCommands,
  'join-token': async () => (await import('./commands/join.js')).registerJoinCommands,
  lab: async () => (await import('./commands/lab.js')).registerLabCommands,
  network: async () => (await import('./commands/network.js')).registerNetworkCommands,
  node: async () => (await import('./commands/node.js')).registerNodeCommands,
  secret: async () => (await import('./commands/secret.js')).registerSecretCommands,
  service: async () => (await import('./commands/service.js')).registerServiceCommands,
  stack: async () => (await import('./commands/stack.js')).registerStackCommands,
  task: async () => (await import('./commands/task.js')).registerTaskCommands,
  volume: async () => (await import('./commands/volume.js')).registerVolumeCommands,
};

// A reader that stops early (`skiff node ls | head -1`) is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

async function main(): Promise<void> {
  const program = new Command('skiff')
    .version(SKIFF_VERSION, '-v, --version', 'print the version and exit')
    .description('Skiff: a multi-host container orchestrator')
    .option('-H, --host <unix:///path>', "talk to a manager's local control socket instead of the current context")
    .option('--stale', "answer reads from the contacted manager's own store, without confirming it is current (to look around after a quorum loss)")
    .enablePositionalOptions()
    .exitOverride();
  const group = process.argv.slice(2).find((argument) => !argument.startsWith('-'));
  const versionOnly = group === undefined && process.argv.slice(2).some((argument) => argument === '-v' || argument === '--version');
  // `skiff --version` needs no command group; `skiff --help` and unknown words need them all.
  const wanted = group !== undefined && group in GROUPS ? [group] : versionOnly ? [] : Object.keys(GROUPS);
  // Several names may share one module (`join`, `join-token`): register each module once.
  const registrations = new Set(await Promise.all(wanted.map((name) => GROUPS[name]!())));
  for (const register of registrations) register(program);
  await program.parseAsync(process.argv);
}

main().catch((error: unknown) => {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  process.stderr.write(`skiff: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
