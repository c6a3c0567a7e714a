/** skiff: the CLI. Parses, calls, prints; no business logic lives here. */
import { Command, CommanderError } from 'commander';
import { registerInitCommand } from './commands/init.js';
import { registerLabCommands } from './commands/lab.js';
import { registerNodeCommands } from './commands/node.js';
import { registerServiceCommands } from './commands/service.js';

const program = new Command('skiff')
  .description('Skiff: a multi-host container orchestrator')
  .option('-H, --host <unix:///path>', "talk to a manager's local control socket instead of the current context")
  .enablePositionalOptions()
  .exitOverride();

registerInitCommand(program);
registerNodeCommands(program);
registerServiceCommands(program);
registerLabCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  process.stderr.write(`skiff: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
