// `skiff autolock enable|disable|rotate-key|key` and `skiff unlock`. With autolock on, a
// manager that restarts stays locked until `skiff unlock` (on its host, over the local
// socket) is given the unlock key, read from standard input so it never shows in `ps`.
import type { Command } from 'commander';
import { CliError, withConnection, type ControlConnection } from '../client.js';

async function setAutolock(connection: ControlConnection, on: boolean, rotate: boolean): Promise<string | undefined> {
  const cluster = (await connection.call((c) => c.getCluster, {})).cluster;
  if (cluster?.spec === undefined) throw new CliError('cannot change autolock: the cluster has no spec yet');
  await connection.call((c) => c.updateCluster, {
    version: cluster.meta?.version ?? 0,
    spec: { ...cluster.spec, autolock: on },
    rotateWorkerToken: false,
    rotateManagerToken: false,
    rotateUnlockKey: rotate,
  });
  return on ? (await connection.call((c) => c.getUnlockKey, {})).unlockKey : undefined;
}

function printKey(key: string | undefined, what: string): void {
  process.stdout.write(
    `${what}\nThe unlock key is:\n\n    ${key ?? ''}\n\nKeep it somewhere safe: a manager that restarts stays locked until \`skiff unlock\` is given it.\n`,
  );
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

export function registerAutolockCommands(program: Command): void {
  const autolock = program.command('autolock').description('keep restarted managers locked until given the unlock key');
  autolock
    .command('enable')
    .description('turn autolock on and print the unlock key')
    .action(async () => withConnection(program, async (connection) => printKey(await setAutolock(connection, true, false), 'Autolock is on.')));
  autolock
    .command('disable')
    .description('turn autolock off: managers keep their key-encryption key on disk again')
    .action(async () =>
      withConnection(program, async (connection) => {
        await setAutolock(connection, false, false);
        process.stdout.write('Autolock is off.\n');
      }),
    );
  autolock
    .command('rotate-key')
    .description('replace the unlock key (the old one stops working once managers re-wrap)')
    .action(async () => withConnection(program, async (connection) => printKey(await setAutolock(connection, true, true), 'The unlock key was rotated.')));
  autolock
    .command('key')
    .description('print the current unlock key')
    .action(async () =>
      withConnection(program, async (connection) => {
        process.stdout.write(`${(await connection.call((c) => c.getUnlockKey, {})).unlockKey}\n`);
      }),
    );

  program
    .command('unlock')
    .description("unlock this host's manager (use -H unix:///run/skiff/skiff.sock); the unlock key is read from standard input")
    .action(async () => {
      const unlockKey = await readStdin();
      if (unlockKey === '') throw new CliError('cannot unlock: no unlock key on standard input (echo "$KEY" | skiff unlock)');
      await withConnection(program, async (connection) => {
        await connection.call((c) => c.unlock, { unlockKey });
        process.stdout.write('Manager unlocked.\n');
      });
    });
}
