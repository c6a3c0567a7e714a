/** `skiff service logs [-f] [--tail N|all] [--since T] [--timestamps] SERVICE|TASK`. */
import type { Command } from 'commander';
import * as grpc from '@grpc/grpc-js';
import type { LogMessage } from '../../proto/skiff/v1/attach.js';
import { CliError, withConnection } from '../client.js';
import { type LogsFlags, logPrefix, logsOptions } from './logs-flags.js';

export function registerServiceLogsCommand(program: Command, service: Command): void {
  service
    .command('logs')
    .description("show the output of a service's tasks (or of one task) from every node")
    .argument('<service|task>', 'service name, id or id prefix; or a task name (web.2) or id')
    .option('-f, --follow', 'keep printing new lines until interrupted', false)
    .option('-n, --tail <n>', 'lines per task from the end, or all', 'all')
    .option('--since <time>', 'only lines since a duration ago (10m, 1h30m) or an RFC 3339 time')
    .option('-t, --timestamps', 'show the time of each line', false)
    .action(async (reference: string, flags: LogsFlags) => {
      const options = logsOptions(flags, Date.now());
      await withConnection(program, async (connection) => {
        const nodes = await connection.call((client) => client.listNodes, {});
        const hostnames = new Map(nodes.nodes.map((node) => [node.meta?.id ?? '', node.description?.hostname || node.meta?.id || '']));
        const client = await connection.reachable();
        const call = client.taskLogs({ service: reference, task: '', options });
        const stop = (): void => call.cancel();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          await printLogs(call, hostnames, flags.timestamps);
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      });
    });
}

async function printLogs(call: grpc.ClientReadableStream<LogMessage>, hostnames: Map<string, string>, timestamps: boolean): Promise<void> {
  try {
    for await (const message of call as AsyncIterable<LogMessage>) {
      const prefix = logPrefix(message.taskName, message.taskId, hostnames.get(message.nodeId) ?? message.nodeId);
      const out = message.stream === 'stderr' ? process.stderr : process.stdout;
      const text = Buffer.concat([Buffer.from(`${prefix}    | ${timestamps ? `${message.timestamp} ` : ''}`), Buffer.from(message.line), Buffer.from('\n')]);
      // The server waits while the terminal or pipe is slow: memory stays bounded.
      if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', resolve));
    }
  } catch (error) {
    const serviceError = error as grpc.ServiceError;
    if (serviceError.code === grpc.status.CANCELLED) return; // interrupted by the user
    throw new CliError(serviceError.details || serviceError.message);
  }
}
