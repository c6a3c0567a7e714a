/**
 * Answers a NodeLogsRequest: reads the log of each asked task's container on this node and sends
 * LogBatch frames of at most MAX_LOG_BATCH_BYTES. Without follow it sends `done` once every log
 * was read; with follow it keeps sending until the manager ends the call or every container
 * stopped or is gone. Tasks without a container here are skipped (removed already).
 */
import type { LogMessage } from '../../proto/skiff/v1/attach.js';
import type { NodeLogsRequest } from '../../proto/skiff/v1/dispatcher.js';
import { readLog } from '../logs/log-reader.js';
import type { Runtime } from '../runtime/types.js';
import type { FrameSink } from './frame-sink.js';

/** Bytes of log lines per LogBatch frame at most (one line longer than this goes alone). */
export const MAX_LOG_BATCH_BYTES = 64 * 1024;
/** How long lines may wait for more before a partial batch goes out while following. */
export const LOG_BATCH_LINGER_MS = 50;
/** Per-message overhead counted against the batch size (ids, timestamp, stream). */
const MESSAGE_OVERHEAD_BYTES = 96;

/** Collects lines into batches; add() waits while a full batch is being sent (backpressure). */
export class LogBatcher {
  private messages: LogMessage[] = [];
  private bytes = 0;
  private sending: Promise<void> = Promise.resolve();
  private lingerTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sink: FrameSink,
    private readonly maxBytes = MAX_LOG_BATCH_BYTES,
  ) {}

  async add(message: LogMessage): Promise<void> {
    const size = message.line.length + MESSAGE_OVERHEAD_BYTES;
    if (this.bytes > 0 && this.bytes + size > this.maxBytes) await this.flush();
    this.messages.push(message);
    this.bytes += size;
    if (this.bytes >= this.maxBytes) await this.flush();
    else if (this.lingerTimer === undefined) this.lingerTimer = setTimeout(() => void this.flush(), LOG_BATCH_LINGER_MS);
  }

  flush(): Promise<void> {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.messages.length > 0) {
      const messages = this.messages;
      this.messages = [];
      this.bytes = 0;
      this.sending = this.sending.then(() => this.sink.send({ $case: 'logs', value: { messages } }));
    }
    return this.sending;
  }
}

export async function answerLogs(request: NodeLogsRequest, runtime: Pick<Runtime, 'inspect'>, nodeId: string, sink: FrameSink, signal: AbortSignal): Promise<void> {
  const options = request.options ?? { follow: false, tail: -1, sinceMs: 0 };
  const batcher = new LogBatcher(sink);
  await Promise.all(
    request.taskIds.map(async (taskId) => {
      // The container of a task has the task's id (agent/executor/container-request.ts).
      const container = await runtime.inspect(taskId);
      if (container === undefined) return;
      const finished = async (): Promise<boolean> => (await runtime.inspect(taskId))?.status !== 'running';
      const entries = readLog(container.logPath, { tail: Number(options.tail), sinceMs: Number(options.sinceMs), follow: options.follow, signal, finished });
      for await (const entry of entries) {
        await batcher.add({ taskId, taskName: '', nodeId, timestamp: entry.timestamp, stream: entry.stream, line: entry.line });
      }
    }),
  );
  await batcher.flush();
  if (!signal.aborted) await sink.send({ $case: 'done', value: true });
}
