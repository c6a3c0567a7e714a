/**
 * The CLI's connection to a manager: mutual TLS with the context's admin certificate, trying the
 * context's managers in order; or the local unix socket with `--host unix:///path` (or
 * SKIFF_HOST). Calls are promisified; gRPC errors become CliError with the server's message.
 */
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import { channelCredentials, channelOptions } from '../pki/grpc-credentials.js';
import { ControlClient } from '../proto/skiff/v1/control.js';
import { READ_CONSISTENCY_HEADER, READ_STALE } from '../common/read-consistency.js';
import { freshAdminCredential, readContextFiles } from './admin-credential.js';
import { CliError } from './cli-error.js';
import { loadContext } from './context.js';

/** Deadline of one control call. */
export const CALL_TIMEOUT_MS = 15_000;

export { CliError };

type Client = InstanceType<typeof ControlClient>;
type Unary<Request, Response> = (request: Request, metadata: grpc.Metadata, options: Partial<grpc.CallOptions>, callback: (error: grpc.ServiceError | null, response: Response) => void) => grpc.ClientUnaryCall;

/** A connected control client whose calls return promises. */
export class ControlConnection {
  /** With `stale`, reads are answered from the contacted manager's own store (see common/read-consistency.ts). */
  constructor(
    private readonly clients: Client[],
    private readonly options: { stale?: boolean } = {},
  ) {}

  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (this.options.stale === true) metadata.set(READ_CONSISTENCY_HEADER, READ_STALE);
    return metadata;
  }

  /**
   * Calls `method` on the first manager that answers. A manager's own refusal is final (e.g.
   * "cannot write: no quorum": another manager might apply the write a second time), except a
   * refused read: a manager cut off from the majority cannot read, but another one may, and a
   * read is safe to ask again. Transport failures move on to the next manager.
   */
  async call<Request, Response>(pick: (client: Client) => Unary<Request, Response>, request: Request): Promise<Response> {
    let lastError: grpc.ServiceError | undefined;
    let refusedRead: grpc.ServiceError | undefined;
    for (const client of this.clients) {
      try {
        return await new Promise<Response>((resolve, reject) => {
          pick(client).call(client, request, this.metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (error, response) =>
            error === null ? resolve(response) : reject(error),
          );
        });
      } catch (error) {
        const serviceError = error as grpc.ServiceError;
        const details = serviceError.details ?? '';
        if (serviceError.code === grpc.status.UNAVAILABLE && details.startsWith('cannot read:')) {
          refusedRead ??= serviceError;
          continue;
        }
        if (serviceError.code !== grpc.status.UNAVAILABLE || details.startsWith('cannot ')) throw new CliError(details || serviceError.message);
        lastError = serviceError;
      }
    }
    if (refusedRead !== undefined) throw new CliError(refusedRead.details);
    throw new CliError(`cannot reach a manager: ${lastError?.details ?? 'no managers configured'}`);
  }

  /**
   * The first manager that can be reached, for streaming calls (logs, exec, images), which cannot be
   * retried on another manager once they began. Any manager serves them (followers relay to the leader).
   */
  async reachable(): Promise<Client> {
    let lastError = 'no managers configured';
    for (const client of this.clients) {
      try {
        await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + CALL_TIMEOUT_MS / this.clients.length, (error) => (error === undefined || error === null ? resolve() : reject(error))));
        return client;
      } catch (error) {
        lastError = error instanceof Error ? error.message : String(error);
      }
    }
    throw new CliError(`cannot reach a manager: ${lastError}`);
  }

  close(): void {
    for (const client of this.clients) client.close();
  }
}

export async function connect(host: string | undefined, options: { stale?: boolean } = {}): Promise<ControlConnection> {
  const target = host ?? process.env.SKIFF_HOST;
  if (target !== undefined && target !== '') {
    if (!target.startsWith('unix://')) throw new CliError(`cannot connect to "${target}": --host takes unix:///path/to/skiff.sock`);
    return new ControlConnection([new ControlClient(target, grpc.credentials.createInsecure())], options);
  }
  const context = await loadContext();
  const credentials = channelCredentials(await freshAdminCredential(context, await readContextFiles(context)));
  return new ControlConnection(
    context.managers.map((addr) => new ControlClient(addr, credentials, channelOptions())),
    options,
  );
}

/** A connection as the program's global flags ask: --host (or the current context) and --stale. */
export function connectFor(program: Command): Promise<ControlConnection> {
  const flags = program.opts<{ host?: string; stale?: boolean }>();
  return connect(flags.host, { stale: flags.stale === true });
}

/** Runs `run` with a connection from the program's --host (or the current context), then closes it. */
export async function withConnection<T>(program: Command, run: (connection: ControlConnection) => Promise<T>): Promise<T> {
  const connection = await connectFor(program);
  try {
    return await run(connection);
  } finally {
    connection.close();
  }
}

/** Commander accumulator for repeatable options. */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];
