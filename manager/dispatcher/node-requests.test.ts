import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import type { AgentFrame, DispatcherMessage, ManagerFrame } from '../../proto/skiff/v1/dispatcher.js';
import { type AttachCall, NodeRequestBroker } from './node-requests.js';

/** A fake Attach call: the test plays the agent, pushing frames and reading what the manager wrote. */
class FakeAttach extends Duplex {
  readonly written: ManagerFrame[] = [];
  ended = false;
  error: Error | undefined;

  constructor() {
    super({ objectMode: true });
    this.on('error', (error: Error) => (this.error = error));
  }
  override _read(): void {}
  override _write(frame: ManagerFrame, _encoding: string, callback: () => void): void {
    this.written.push(frame);
    callback();
  }
  override _final(callback: () => void): void {
    this.ended = true;
    callback();
  }
  agentSends(frame: AgentFrame): void {
    this.push(frame);
  }
  agentEnds(): void {
    this.push(null);
  }
}

function setup(connected: string[], attachTimeoutMs = 5_000) {
  const sent: { nodeId: string; message: DispatcherMessage }[] = [];
  const broker = new NodeRequestBroker({
    sendToNode: (nodeId, message) => {
      if (!connected.includes(nodeId)) return false;
      sent.push({ nodeId, message });
      return true;
    },
    attachTimeoutMs,
    log: createLogger({}, () => undefined),
  });
  const requestIdOf = (index: number): string => {
    const message = sent[index]?.message.message;
    if (message?.$case !== 'request') throw new Error('no request sent');
    return message.value.requestId;
  };
  return { broker, sent, requestIdOf };
}

const logsBody = { $case: 'logs' as const, value: { taskIds: ['t1'], options: { follow: false, tail: -1, sinceMs: 0 } } };

async function collect(frames: AsyncIterable<AgentFrame>): Promise<AgentFrame[]> {
  const all: AgentFrame[] = [];
  for await (const frame of frames) all.push(frame);
  return all;
}

describe('NodeRequestBroker', () => {
  it('refuses a node without a session, naming it', () => {
    const { broker } = setup([]);
    expect(() => broker.open('n1', logsBody, 'host1')).toThrow(/node host1: it is not connected/);
  });

  it('says which node did not answer when no Attach comes in time', async () => {
    const { broker } = setup(['n1'], 30);
    const stream = broker.open('n1', logsBody, 'host1');
    await expect(collect(stream.frames())).rejects.toThrow('node host1 did not answer within 0 s');
  });

  it('joins the Attach of the right node: frames flow both ways, and the agent ending ends the stream', async () => {
    const { broker, sent, requestIdOf } = setup(['n1']);
    const stream = broker.open('n1', { $case: 'exec', value: { task: 't1', argv: ['true'], env: [], user: '', workdir: '', attachStdin: true } });
    expect(sent[0]?.nodeId).toBe('n1');
    const call = new FakeAttach();
    call.agentSends({ requestId: requestIdOf(0), frame: undefined });
    void broker.attach('n1', call as unknown as AttachCall);
    const frames = collect(stream.frames());
    await stream.send({ frame: { $case: 'execInput', value: { input: { $case: 'stdin', value: Buffer.from('in') } } } });
    call.agentSends({ requestId: '', frame: { $case: 'execOutput', value: { output: { $case: 'stdout', value: Buffer.from('out') } } } });
    call.agentSends({ requestId: '', frame: { $case: 'execOutput', value: { output: { $case: 'exitCode', value: 3 } } } });
    call.agentEnds();
    const received = await frames;
    expect(received.map((frame) => frame.frame?.$case)).toEqual(['execOutput', 'execOutput']);
    expect(call.written).toHaveLength(1);
    expect(call.written[0]?.frame?.$case).toBe('execInput');
  });

  it('refuses an Attach from another node than the one asked, and keeps waiting for the right one', async () => {
    const { broker, requestIdOf } = setup(['n1', 'n2']);
    const stream = broker.open('n1', logsBody);
    const intruder = new FakeAttach();
    intruder.agentSends({ requestId: requestIdOf(0), frame: undefined });
    await broker.attach('n2', intruder as unknown as AttachCall);
    expect(intruder.error?.message).toContain('no request');
    expect((intruder.error as Error & { code?: number }).code).toBe(7);
    const call = new FakeAttach();
    call.agentSends({ requestId: requestIdOf(0), frame: { $case: 'done', value: true } });
    call.agentEnds();
    await broker.attach('n1', call as unknown as AttachCall);
    expect((await collect(stream.frames())).map((frame) => frame.frame?.$case)).toEqual(['done']);
  });

  it('cancel ends the agent side and stops a waiting reader', async () => {
    const { broker, requestIdOf } = setup(['n1']);
    const stream = broker.open('n1', logsBody);
    const call = new FakeAttach();
    call.agentSends({ requestId: requestIdOf(0), frame: undefined });
    await broker.attach('n1', call as unknown as AttachCall);
    const frames = collect(stream.frames());
    await new Promise((resolve) => setTimeout(resolve, 10));
    stream.cancel();
    expect(await frames).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(call.ended).toBe(true);
  });

  it('an agent whose call is cancelled (it went away) ends the stream', async () => {
    const { broker, requestIdOf } = setup(['n1']);
    const stream = broker.open('n1', logsBody);
    const call = new FakeAttach();
    call.agentSends({ requestId: requestIdOf(0), frame: undefined });
    await broker.attach('n1', call as unknown as AttachCall);
    const frames = collect(stream.frames());
    call.emit('cancelled');
    expect(await frames).toEqual([]);
  });

  it('failAll ends requests still waiting for their node', async () => {
    const { broker } = setup(['n1']);
    const stream = broker.open('n1', logsBody);
    broker.failAll('this manager stopped leading');
    await expect(collect(stream.frames())).rejects.toThrow('this manager stopped leading');
  });
});
