// `skiff ca rotate`: a new cluster root, cross-signed by the current one. Nodes renew onto it
// in batches while old and new certificates keep working together; this CLI's admin credential
// renews onto it at once (other admins' at their next command past half their lifetime).
import type { Command } from 'commander';
import { readContextFiles, renewAdminCredential } from '../admin-credential.js';
import { withConnection } from '../client.js';
import { loadContext } from '../context.js';

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
        // This CLI's own credential moves onto the new root now, not at half its lifetime.
        if (usesContext(program)) {
          const context = await loadContext();
          const current = await readContextFiles(context);
          const renewed = await renewAdminCredential(context, current, { force: true });
          if (renewed !== current) process.stdout.write(`The admin credential of context ${context.name} was renewed onto the new root.\n`);
        }
      }),
    );
}

/** Whether the program talks through a context (not a manager's local socket). */
function usesContext(program: Command): boolean {
  const host = program.opts<{ host?: string }>().host ?? process.env['SKIFF_HOST'];
  return host === undefined || host === '';
}
