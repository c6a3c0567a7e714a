// `skiff ca rotate`: a new cluster root, cross-signed by the current one. Nodes renew onto it
// in batches while old and new certificates keep working together; this CLI's admin credential
// renews onto it at once (other admins' at their next command past half their lifetime). Unless
// --detach, the CLI then follows the rotation until the leader ends it (every node on the new
// root) and the previous root is no longer trusted.
import type { Command } from 'commander';
import type { Cluster, Node } from '../../proto/skiff/v1/objects.js';
import { nodesOffCurrentRoot, rotationInProgress } from '../../manager/security/root-rotation.js';
import { readContextFiles, renewAdminCredential } from '../admin-credential.js';
import { CliError } from '../cli-error.js';
import { type ControlConnection, withConnection } from '../client.js';
import { loadContext } from '../context.js';
import { parseDuration } from './duration-flag.js';

/** How often the CLI reads the rotation's progress while it waits. */
const POLL_INTERVAL_MS = 500;

export function registerCaCommands(program: Command): void {
  const ca = program.command('ca').description('the cluster certificate authority');
  ca.command('rotate')
    .description('issue a new root CA (cross-signed by the current one); every node renews onto it, then the old root is no longer trusted')
    .option('-d, --detach', 'return once the new root is issued, without waiting for every node to renew onto it', false)
    .option('--timeout <duration>', 'how long to wait for every node to renew onto the new root', '2m')
    .action(async (flags: { detach: boolean; timeout: string }) => {
      const timeoutMs = parseDuration('--timeout', flags.timeout);
      await withConnection(program, async (connection) => {
        const cluster = (await connection.call((c) => c.rotateRootCa, {})).cluster;
        process.stdout.write(
          `Root CA rotated: new digest ${cluster?.rootCa?.caDigest ?? '?'}. Nodes renew onto it within seconds; ` +
            'join tokens now pin the new root (see skiff join-token worker|manager).\n',
        );
        // This CLI's own credential moves onto the new root now, not at half its lifetime.
        if (await renewOwnCredential(program)) process.stdout.write(`The admin credential of context ${(await loadContext()).name} was renewed onto the new root.\n`);
      });
      if (flags.detach) return;
      // A new connection: the one above presented the old-root credential, which the end of the
      // rotation makes managers refuse in new handshakes.
      await withConnection(program, (connection) => followRotation(connection, timeoutMs));
      // Its trust bundle too: the old root no longer vouches for a manager to this CLI.
      await renewOwnCredential(program);
    });
}

/** Renews the context's admin credential now; false when the CLI talks through a manager's local socket, or the renewal failed (warned). */
async function renewOwnCredential(program: Command): Promise<boolean> {
  if (!usesContext(program)) return false;
  const context = await loadContext();
  const current = await readContextFiles(context);
  return (await renewAdminCredential(context, current, { force: true })) !== current;
}

/** One line of the rotation's progress, e.g. "root rotation: 3 of 5 nodes hold a certificate from the new root". */
export function rotationProgressLine(cluster: Cluster | undefined, nodes: readonly Node[]): string {
  const onNewRoot = nodes.length - nodesOffCurrentRoot(cluster, nodes).length;
  return `root rotation: ${onNewRoot} of ${nodes.length} node${nodes.length === 1 ? '' : 's'} hold a certificate from the new root`;
}

/** What the CLI says when the rotation is not finished by its deadline: who has not renewed, and the way out. */
export function rotationTimeoutMessage(cluster: Cluster | undefined, nodes: readonly Node[], timeoutMs: number): string {
  const pending = nodesOffCurrentRoot(cluster, nodes).map((node) => node.description?.hostname || (node.meta?.id ?? '?'));
  return (
    `the root rotation is not finished after ${timeoutMs / 1000} s: ${pending.length === 0 ? 'the leader has not ended it yet' : `${pending.sort().join(', ')} hold no certificate from the new root yet`}. ` +
    'The rotation goes on and ends by itself once they renew (a node that is down renews when it is back); `skiff node rm` of a node gone for good lets it finish'
  );
}

/** Waits until the cluster trusts the new root only, printing progress lines as they change. */
async function followRotation(connection: ControlConnection, timeoutMs: number, write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastLine = '';
  for (;;) {
    const { cluster } = await connection.call((c) => c.getCluster, {});
    const { nodes } = await connection.call((c) => c.listNodes, {});
    if (!rotationInProgress(cluster)) {
      write(`Root rotation finished: every node holds a certificate from the new root, and the previous root is no longer trusted.`);
      return;
    }
    const line = rotationProgressLine(cluster, nodes);
    if (line !== lastLine) write(line);
    lastLine = line;
    if (Date.now() > deadline) throw new CliError(rotationTimeoutMessage(cluster, nodes, timeoutMs));
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/** Whether the program talks through a context (not a manager's local socket). */
function usesContext(program: Command): boolean {
  const host = program.opts<{ host?: string }>().host ?? process.env['SKIFF_HOST'];
  return host === undefined || host === '';
}
