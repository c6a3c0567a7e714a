/** `skiff task exec [-i] [-e K=V] [-u USER] [-w DIR] TASK -- CMD...`. */
import type { Command } from 'commander';
import * as grpc from '@grpc/grpc-js';
import type { ExecOutput } from '../../proto/skiff/v1/attach.js';
import type { ExecClientMessage } from '../../proto/skiff/v1/control.js';
import { CliError, collect, withConnection } from '../client.js';
import { type ExecFlags, execRequest } from './logs-flags.js';

export function registerTaskCommands(program: Command): void {
  const task = program.command('task').description('work with the tasks of services');
  task
    .command('exec')
    .description('run a command in a running task, on whatever node it runs; exits with its exit code')
    .argument('<task>', 'task name (web.1), id or id prefix')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('-i, --interactive', 'pass this terminal\'s stdin to the command', false)
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collect, [])
    .option('-u, --user <user>', 'user[:group] to run as (default: the task\'s user)')
    .option('-w, --workdir <dir>', 'working directory (default: the task\'s)')
    .passThroughOptions()
    .action(async (reference: string, argv: string[], flags: ExecFlags) => {
      // `TASK -- CMD…`: the separator may reach us as the first word of the command.
      const request = execRequest(reference, argv[0] === '--' ? argv.slice(1) : argv, flags);
      const exitCode = await withConnection(program, async (connection) => {
        const client = await connection.reachable();
        const call = client.execTask();
        // Stdin still being relayed when the call ended: its failed writes are of no interest.
        call.on('error', () => undefined);
        call.write({ message: { $case: 'start', value: request } });
        if (flags.interactive) void relayStdin(call);
        else call.end();
        try {
          return await relayOutput(call);
        } finally {
          if (flags.interactive) process.stdin.destroy();
        }
      });
      process.exitCode = exitCode;
    });
}

/** This process's stdin to the command, then its end. */
async function relayStdin(call: grpc.ClientDuplexStream<ExecClientMessage, ExecOutput>): Promise<void> {
  try {
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      if (!call.write({ message: { $case: 'input', value: { input: { $case: 'stdin', value: chunk } } } })) await new Promise<void>((resolve) => call.once('drain', resolve));
    }
    call.write({ message: { $case: 'input', value: { input: { $case: 'stdinClosed', value: true } } } });
  } finally {
    call.end();
  }
}

/** The command's output to this process's stdout and stderr; resolves with its exit code. */
async function relayOutput(call: grpc.ClientDuplexStream<ExecClientMessage, ExecOutput>): Promise<number> {
  try {
    for await (const frame of call as AsyncIterable<ExecOutput>) {
      const output = frame.output;
      if (output?.$case === 'exitCode') return output.value;
      if (output === undefined) continue;
      const out = output.$case === 'stdout' ? process.stdout : process.stderr;
      if (!out.write(output.value)) await new Promise<void>((resolve) => out.once('drain', resolve));
    }
  } catch (error) {
    const serviceError = error as grpc.ServiceError;
    throw new CliError(serviceError.details || serviceError.message);
  }
  throw new CliError('cannot exec: the manager ended the call without the exit code');
}
