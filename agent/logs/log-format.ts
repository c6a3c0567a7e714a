/**
 * The k8s-file log format that conmon writes: one record per line,
 * `<RFC 3339 nano timestamp> <stdout|stderr> <F|P> <bytes>`, where P marks a partial line whose
 * rest follows in the next records of the same stream and F the record that ends a line. Lines
 * are bytes (a container may print anything), so records are split on the byte 0x0a only.
 */

/** A container's output line, joined from its records. */
export interface LogEntry {
  /** The first record's timestamp, as conmon wrote it. */
  timestamp: string;
  timeMs: number;
  stream: 'stdout' | 'stderr';
  line: Buffer;
}

/** Longest record we buffer while its newline has not been read yet; longer ones are cut. */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** Longest joined line; a longer one is delivered in pieces of this size. */
export const MAX_LINE_BYTES = 1024 * 1024;

interface LogRecord {
  timestamp: string;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  text: Buffer;
}

const SPACE = 0x20;

/** One record, or undefined for a line that is not a k8s-file record (skipped). */
export function parseRecord(record: Buffer): LogRecord | undefined {
  const first = record.indexOf(SPACE);
  const second = first < 0 ? -1 : record.indexOf(SPACE, first + 1);
  if (second < 0) return undefined;
  const stream = record.subarray(first + 1, second).toString('latin1');
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const tag = record.subarray(second + 1, second + 2).toString('latin1');
  if (tag !== 'F' && tag !== 'P') return undefined;
  // A record may end right after its tag (an empty line): "... stdout F".
  const text = record.length > second + 3 ? record.subarray(second + 3) : Buffer.alloc(0);
  return { timestamp: record.subarray(0, first).toString('latin1'), stream, partial: tag === 'P', text };
}

/** Unix ms of an RFC 3339 timestamp with up to nanoseconds (Date.parse takes milliseconds only). */
export function timestampMs(timestamp: string): number {
  const trimmed = timestamp.replace(/(\.\d{3})\d+/, '$1');
  const parsed = Date.parse(trimmed);
  return Number.isNaN(parsed) ? 0 : parsed;
}

/** Splits bytes into records at newlines; keeps the unfinished tail for the next chunk. */
export class RecordSplitter {
  private rest: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    const data = this.rest.length === 0 ? chunk : Buffer.concat([this.rest, chunk]);
    const records: Buffer[] = [];
    let start = 0;
    for (;;) {
      const newline = data.indexOf(0x0a, start);
      if (newline < 0) break;
      records.push(data.subarray(start, newline));
      start = newline + 1;
    }
    this.rest = Buffer.from(data.subarray(start));
    if (this.rest.length > MAX_RECORD_BYTES) {
      records.push(this.rest);
      this.rest = Buffer.alloc(0);
    }
    return records;
  }

  /** Bytes read past the last newline (a record being written right now). */
  get pendingBytes(): number {
    return this.rest.length;
  }
}

/** Joins partial records into lines, per stream (stdout and stderr interleave freely). */
export class LineJoiner {
  private readonly partial = new Map<'stdout' | 'stderr', { timestamp: string; parts: Buffer[]; bytes: number }>();

  push(record: Buffer): LogEntry[] {
    const parsed = parseRecord(record);
    if (parsed === undefined) return [];
    const open = this.partial.get(parsed.stream) ?? { timestamp: parsed.timestamp, parts: [], bytes: 0 };
    open.parts.push(parsed.text);
    open.bytes += parsed.text.length;
    if (parsed.partial && open.bytes < MAX_LINE_BYTES) {
      this.partial.set(parsed.stream, open);
      return [];
    }
    this.partial.delete(parsed.stream);
    return [{ timestamp: open.timestamp, timeMs: timestampMs(open.timestamp), stream: parsed.stream, line: Buffer.concat(open.parts) }];
  }
}
