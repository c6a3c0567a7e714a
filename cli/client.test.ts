import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { CliError, ControlConnection } from './client.js';

type Answer = { code: grpc.status; details: string } | 'ok';

/** Test double of a manager's ControlClient: getService answers `answer` and counts calls. */
function fakeManager(answer: Answer): { client: unknown; calls: () => number } {
  let calls = 0;
  const client = {
    getService(_request: unknown, _metadata: unknown, _options: unknown, callback: (error: grpc.ServiceError | null, response: unknown) => void) {
      calls += 1;
      if (answer === 'ok') callback(null, { service: { id: 'svc' } });
      else callback(Object.assign(new Error(answer.details), answer) as grpc.ServiceError, undefined);
      return {};
    },
  };
  return { client, calls: () => calls };
}

function connection(...managers: Array<{ client: unknown }>): ControlConnection {
  return new ControlConnection(managers.map((manager) => manager.client) as ConstructorParameters<typeof ControlConnection>[0]);
}

const getService = (connection_: ControlConnection): Promise<unknown> => connection_.call((client) => client.getService, { service: 'web' });

const noQuorumRead = { code: grpc.status.UNAVAILABLE, details: 'cannot read: no quorum: this manager sees no leader' };

describe('ControlConnection.call', () => {
  it('asks the next manager when one refuses a read, and answers with the one that can read', async () => {
    const cutOff = fakeManager(noQuorumRead);
    const majority = fakeManager('ok');
    await expect(getService(connection(cutOff, majority))).resolves.toEqual({ service: { id: 'svc' } });
    expect([cutOff.calls(), majority.calls()]).toEqual([1, 1]);
  });

  it('keeps a refused write final: another manager is not asked', async () => {
    const refusing = fakeManager({ code: grpc.status.UNAVAILABLE, details: 'cannot write: no quorum: the write was not committed within 5000 ms' });
    const other = fakeManager('ok');
    await expect(getService(connection(refusing, other))).rejects.toThrow(/^cannot write: no quorum/);
    expect(other.calls()).toBe(0);
  });

  it('reports the first refusal when every manager refuses the read or cannot be reached', async () => {
    const unreachable = fakeManager({ code: grpc.status.UNAVAILABLE, details: 'No connection established' });
    const first = fakeManager(noQuorumRead);
    const second = fakeManager({ code: grpc.status.UNAVAILABLE, details: 'cannot read: leadership moved; retry' });
    const error = await getService(connection(unreachable, first, second)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CliError);
    expect(String(error)).toMatch(/cannot read: no quorum: this manager sees no leader$/);
    expect([unreachable.calls(), first.calls(), second.calls()]).toEqual([1, 1, 1]);
  });

  it('moves on past transport failures, and names the last one when no manager answers', async () => {
    const down = fakeManager({ code: grpc.status.UNAVAILABLE, details: 'connect ECONNREFUSED 10.0.0.1:4243' });
    const up = fakeManager('ok');
    await expect(getService(connection(down, up))).resolves.toEqual({ service: { id: 'svc' } });
    await expect(getService(connection(down))).rejects.toThrow('cannot reach a manager: connect ECONNREFUSED 10.0.0.1:4243');
    // Errors other than UNAVAILABLE are the manager's answer.
    const missing = fakeManager({ code: grpc.status.NOT_FOUND, details: 'no such service: web' });
    await expect(getService(connection(missing, up))).rejects.toThrow('no such service: web');
  });
});

describe('ControlConnection metadata', () => {
  it('asks for stale reads only with --stale', async () => {
    const seen: string[][] = [];
    const client = {
      getService(_request: unknown, metadata: grpc.Metadata, _options: unknown, callback: (error: grpc.ServiceError | null, response: unknown) => void) {
        seen.push(metadata.get('skiff-read-consistency').map(String));
        callback(null, {});
        return {};
      },
    };
    const clients = [client] as unknown as ConstructorParameters<typeof ControlConnection>[0];
    await new ControlConnection(clients).call((c) => c.getService, { service: 'web' });
    await new ControlConnection(clients, { stale: true }).call((c) => c.getService, { service: 'web' });
    expect(seen).toEqual([[], ['stale']]);
  });
});
