/**
 * `skiff context ls|use|rm|create`, as `docker context`: the clusters this CLI can talk to, each
 * a list of managers and an admin credential. `create` asks a manager (through the current
 * context, or a manager host's local socket with -H) for a new admin credential: the key is made
 * here and never leaves this machine.
 */
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE, writeCredentials } from '../../pki/credentials-store.js';
import { CliError, withConnection } from '../client.js';
import { contextCertsDir, createContext, readConfig, removeContext, useContext } from '../context.js';
import { parseFormat, printJson, printTable } from '../output.js';

/** The `context ls --format json` row. Field names are a public interface: never rename. */
export interface ContextRow {
  name: string;
  current: boolean;
  managers: string[];
}

const collectAddr = (value: string, previous: string[]): string[] => {
  if (!/^.+:\d+$/.test(value)) throw new CliError(`cannot parse --manager "${value}": expected ip:port`);
  return [...previous, value];
};

export function registerContextCommands(program: Command): void {
  const context = program.command('context').description('the clusters this CLI talks to (managers and an admin credential)');

  context
    .command('ls')
    .description('list contexts; * marks the current one')
    .option('--format <format>', 'table or json', 'table')
    .action(async (flags: { format: string }) => {
      const format = parseFormat(flags.format);
      const config = await readConfig();
      const rows: ContextRow[] = Object.entries(config.contexts)
        .map(([name, entry]) => ({ name, current: name === config.current, managers: [...entry.managers] }))
        .sort((a, b) => a.name.localeCompare(b.name));
      if (format === 'json') return printJson(rows);
      printTable(rows, [
        ['NAME', (row) => `${row.name}${row.current ? ' *' : ''}`],
        ['MANAGERS', (row) => row.managers.join(',')],
      ]);
    });

  context
    .command('use')
    .description('make NAME the current context')
    .argument('<name>')
    .action(async (name: string) => {
      await useContext(name);
      process.stdout.write(`Current context: ${name}\n`);
    });

  context
    .command('rm')
    .description('remove a context, and its credential when it lives in the CLI home')
    .argument('<name>')
    .action(async (name: string) => {
      const entry = (await readConfig()).contexts[name];
      if (entry === undefined || !(await removeContext(name))) throw new CliError(`cannot remove context ${name}: there is none of that name`);
      // Only the conventional directory is ours to delete; a credential kept elsewhere stays.
      const certsDir = contextCertsDir(name);
      if ([entry.caCertPath, entry.certPath, entry.keyPath].every((path) => dirname(resolve(path)) === certsDir)) await rm(certsDir, { recursive: true, force: true });
      process.stdout.write(`Removed context ${name}\n`);
    });

  context
    .command('create')
    .description("create a context with a new admin credential, issued by a manager (through the current context, or -H a manager's local socket)")
    .argument('<name>')
    .option('--manager <ip:port>', 'a manager of the new context (repeatable; default: every manager the cluster knows)', collectAddr, [])
    .option('--use', 'make it the current context')
    .action(async (name: string, flags: { manager: string[]; use?: boolean }) => {
      const certsDir = contextCertsDir(name);
      if (name in (await readConfig()).contexts) throw new CliError(`cannot create context ${name}: it exists already (skiff context rm ${name} first)`);
      // Imported here: the x509 code is large, and only this command needs it.
      const { createCertificateRequest } = await import('../../pki/certificate-authority.js');
      const request = await createCertificateRequest();
      // Outside the config lock: the connection may renew the current context's credential under it.
      const issued = await withConnection(program, (connection) => connection.call((client) => client.issueAdminCredential, { csr: request.csrDer }));
      const managers = flags.manager.length > 0 ? flags.manager : issued.managers;
      if (managers.length === 0) throw new CliError('cannot create context: the cluster reports no manager address; pass --manager ip:port');
      await createContext(
        name,
        async () => {
          await writeCredentials(certsDir, { caCertPem: issued.caCertPem, certPem: issued.certPem, keyPem: request.keyPem });
          return { managers, caCertPath: join(certsDir, CA_CERT_FILE), certPath: join(certsDir, NODE_CERT_FILE), keyPath: join(certsDir, NODE_KEY_FILE) };
        },
        { makeCurrent: flags.use === true },
      );
      const adminId = issued.adminId;
      process.stdout.write(`Created context ${name} (admin ${adminId}, credential in ${certsDir})${flags.use === true ? '; it is the current context' : ''}\n`);
    });
}
