// `skiff ca rotate`: a new cluster root, cross-signed by the current one. Nodes renew onto it
// in batches while old and new certificates keep working together.
import type { Command } from 'commander';
import { withConnection } from '../client.js';

export function registerCaCommands(program: Command): void {
  const ca = program.command('ca').description('the cluster certificate authority');
  ca.command('rotate')
    .description('issue a new root CA (cross-signed by the current one); every node renews onto it')
    .action(async () =>
      withConnection(program, async (connection) => {
        const cluster = (await connection.call((c) => c.rotateRootCa, {})).cluster;
        process.stdout.write(
          `Root CA rotated: new digest ${cluster?.rootCa?.caDigest ?? '?'}. Nodes renew onto it within seconds; ` +
            'join tokens now pin the new root (see skiff join-token worker|manager).\n',
        );
      }),
    );
}
