/**
 * `skiff secret create|ls|inspect|rm`, and the same commands for configs (config.ts). The data
 * is read from a file or stdin, sent once, and never printed: managers return objects without it.
 */
import { open } from 'node:fs/promises';
import type { Command } from 'commander';
import { Config as ConfigMessage, Secret as SecretMessage } from '../../proto/skiff/v1/objects.js';
import { CliError, collect, withConnection, type ControlConnection } from '../client.js';
import { parseFormat, printJson, printTable } from '../output.js';

/** Largest input read from FILE or stdin: no request over 4 MiB reaches a manager, and the limits are far lower. */
export const MAX_INPUT_BYTES = 4 * 1024 * 1024;

export type DataKind = 'secret' | 'config';
type DataObject = SecretMessage | ConfigMessage;

/** The `secret ls --format json` (and `config ls`) row. Field names are a public interface: never rename. */
export interface DataRow {
  id: string;
  name: string;
  /** ISO 8601. */
  createdAt: string;
  updatedAt: string;
  labels: Record<string, string>;
}

export function dataRow(object: DataObject): DataRow {
  return {
    id: object.meta?.id ?? '',
    name: object.spec?.name ?? '',
    createdAt: new Date(object.meta?.createdAtMs ?? 0).toISOString(),
    updatedAt: new Date(object.meta?.updatedAtMs ?? 0).toISOString(),
    labels: { ...object.spec?.labels },
  };
}

/** "just now", "5 seconds ago", "3 minutes ago", "2 hours ago", "4 days ago". */
export function timeAgo(atMs: number, nowMs: number): string {
  const seconds = Math.max(0, Math.floor((nowMs - atMs) / 1000));
  if (seconds < 1) return 'just now';
  for (const [unit, size] of [['day', 86_400], ['hour', 3_600], ['minute', 60], ['second', 1]] as const) {
    const count = Math.floor(seconds / size);
    if (count >= 1) return `${count} ${unit}${count === 1 ? '' : 's'} ago`;
  }
  return 'just now';
}

/** `inspect` output: the object as JSON, with no data field at all (the manager sends none). */
export function inspectJson(kind: DataKind, object: DataObject): unknown {
  const json = (kind === 'secret' ? SecretMessage.toJSON(object) : ConfigMessage.toJSON(object)) as { spec?: Record<string, unknown> };
  if (json.spec !== undefined) delete json.spec['data'];
  return json;
}

/** The bytes of FILE, or of stdin for `-`; refuses more than MAX_INPUT_BYTES. */
export async function readInput(source: string, stdin: AsyncIterable<Uint8Array | string> = process.stdin): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  const take = (chunk: Uint8Array | string): void => {
    const buffer = Buffer.from(chunk);
    size += buffer.length;
    if (size > MAX_INPUT_BYTES) throw new CliError(`cannot read ${source === '-' ? 'stdin' : source}: it holds more than ${MAX_INPUT_BYTES} bytes`);
    chunks.push(buffer);
  };
  if (source === '-') {
    for await (const chunk of stdin) take(chunk);
    return Buffer.concat(chunks);
  }
  const file = await open(source, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new CliError(`cannot read ${source}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  try {
    for await (const chunk of file.createReadStream({ highWaterMark: 64 * 1024 })) take(chunk as Buffer);
  } finally {
    await file.close();
  }
  return Buffer.concat(chunks);
}

interface DataApi {
  create(connection: ControlConnection, name: string, labels: Record<string, string>, data: Uint8Array): Promise<DataObject | undefined>;
  get(connection: ControlConnection, reference: string): Promise<DataObject | undefined>;
  list(connection: ControlConnection): Promise<DataObject[]>;
  remove(connection: ControlConnection, reference: string): Promise<void>;
}

const APIS: Record<DataKind, DataApi> = {
  secret: {
    create: async (connection, name, labels, data) => (await connection.call((c) => c.createSecret, { spec: { name, labels, data } })).secret,
    get: async (connection, secret) => (await connection.call((c) => c.getSecret, { secret })).secret,
    list: async (connection) => (await connection.call((c) => c.listSecrets, {})).secrets,
    remove: async (connection, secret) => void (await connection.call((c) => c.removeSecret, { secret })),
  },
  config: {
    create: async (connection, name, labels, data) => (await connection.call((c) => c.createConfig, { spec: { name, labels, data } })).config,
    get: async (connection, config) => (await connection.call((c) => c.getConfig, { config })).config,
    list: async (connection) => (await connection.call((c) => c.listConfigs, {})).configs,
    remove: async (connection, config) => void (await connection.call((c) => c.removeConfig, { config })),
  },
};

/** `--label KEY=VALUE` values (create commands of secrets, configs and networks). */
export function parseLabels(values: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const entry of values) {
    const [key, ...rest] = entry.split('=');
    if (key === undefined || key === '') throw new CliError(`invalid value "${entry}" for --label: must be KEY=VALUE`);
    labels[key] = rest.join('=');
  }
  return labels;
}


/** Registers `skiff <kind> create|ls|inspect|rm`. */
export function registerDataCommands(program: Command, kind: DataKind): void {
  const api = APIS[kind];
  const group = program.command(kind).description(`manage ${kind}s`);

  group
    .command('create')
    .description(`create a ${kind} from a file, or from stdin with -`)
    .argument('<name>', `${kind} name`)
    .argument('<file>', 'file holding the data, or - for stdin')
    .option('-l, --label <KEY=VALUE>', `${kind} label (repeatable)`, collect, [])
    .action(async (name: string, file: string, options: { label: string[] }) => {
      const labels = parseLabels(options.label);
      const data = await readInput(file);
      await withConnection(program, async (connection) => {
        const created = await api.create(connection, name, labels, data);
        process.stdout.write(`${created?.meta?.id ?? ''}\n`);
      });
    });

  group
    .command('ls')
    .description(`list ${kind}s`)
    .option('--format <format>', 'table or json')
    .action(async (options: { format?: string }) => {
      const format = parseFormat(options.format);
      await withConnection(program, async (connection) => {
        const objects = (await api.list(connection)).sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? ''));
        if (format === 'json') {
          printJson(objects.map(dataRow));
          return;
        }
        const now = Date.now();
        printTable(objects, [
          ['ID', (object) => (object.meta?.id ?? '').slice(0, 12)],
          ['NAME', (object) => object.spec?.name ?? ''],
          ['CREATED', (object) => timeAgo(object.meta?.createdAtMs ?? 0, now)],
          ['UPDATED', (object) => timeAgo(object.meta?.updatedAtMs ?? 0, now)],
        ]);
      });
    });

  group
    .command('inspect')
    .description(`show ${kind}s in full, without their data (JSON)`)
    .argument(`<${kind}...>`, `${kind} names or ids`)
    .option('--format <format>', 'json (the only format)')
    .action(async (references: string[], options: { format?: string }) => {
      if (options.format !== undefined && options.format !== 'json') throw new CliError(`cannot use --format "${options.format}": inspect prints json only`);
      await withConnection(program, async (connection) => {
        const found: unknown[] = [];
        for (const reference of references) {
          const object = await api.get(connection, reference);
          if (object !== undefined) found.push(inspectJson(kind, object));
        }
        printJson(found);
      });
    });

  group
    .command('rm')
    .description(`remove ${kind}s (refused while a service uses one)`)
    .argument(`<${kind}...>`, `${kind} names or ids`)
    .action(async (references: string[]) => {
      await withConnection(program, async (connection) => {
        for (const reference of references) {
          await api.remove(connection, reference);
          process.stdout.write(`${reference}\n`);
        }
      });
    });
}

export function registerSecretCommands(program: Command): void {
  registerDataCommands(program, 'secret');
}
