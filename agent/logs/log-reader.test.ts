import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LineJoiner, parseRecord, RecordSplitter, timestampMs } from './log-format.js';
import { readLog } from './log-reader.js';
import { shiftLogFiles } from './log-rotation.js';
import type { LogEntry } from './log-format.js';

let dir: string;
let logPath: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-log-reader-'));
  logPath = join(dir, 'c1.log');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A record as conmon writes it, at second `second` of a fixed minute. */
const record = (second: number, stream: 'stdout' | 'stderr', tag: 'F' | 'P', text: string): string =>
  `2026-11-23T10:00:${String(second).padStart(2, '0')}.123456789Z ${stream} ${tag} ${text}\n`;

async function collect(entries: AsyncIterable<LogEntry>): Promise<string[]> {
  const lines: string[] = [];
  for await (const entry of entries) lines.push(`${entry.stream}:${entry.line.toString()}`);
  return lines;
}

const options = (overrides: Partial<Parameters<typeof readLog>[1]> = {}): Parameters<typeof readLog>[1] => ({ tail: -1, sinceMs: 0, follow: false, signal: new AbortController().signal, ...overrides });

describe('log format', () => {
  it('parses records, including an empty line and nanosecond timestamps', () => {
    expect(parseRecord(Buffer.from('2026-11-23T10:00:00.5Z stdout F hello world'))).toMatchObject({ stream: 'stdout', partial: false, text: Buffer.from('hello world') });
    expect(parseRecord(Buffer.from('2026-11-23T10:00:00.5Z stderr F'))?.text.length).toBe(0);
    expect(parseRecord(Buffer.from('garbage'))).toBeUndefined();
    expect(timestampMs('2026-11-23T10:00:01.123456789+00:00')).toBe(Date.parse('2026-11-23T10:00:01.123Z'));
  });

  it('joins partial records per stream and splits at newlines across chunks', () => {
    const splitter = new RecordSplitter();
    const joiner = new LineJoiner();
    const text = record(1, 'stdout', 'P', 'hel') + record(1, 'stderr', 'F', 'err') + record(2, 'stdout', 'F', 'lo');
    const lines: string[] = [];
    for (const chunk of [text.slice(0, 20), text.slice(20, 70), text.slice(70)]) {
      for (const one of splitter.push(Buffer.from(chunk))) for (const entry of joiner.push(one)) lines.push(`${entry.stream}:${entry.line.toString()}:${entry.timestamp.slice(17, 19)}`);
    }
    expect(lines).toEqual(['stderr:err:01', 'stdout:hello:01']);
  });
});

describe('readLog', () => {
  it('reads rotated files oldest first, joining a line split across a rotation', async () => {
    writeFileSync(`${logPath}.2`, record(1, 'stdout', 'F', 'one'));
    writeFileSync(`${logPath}.1`, record(2, 'stdout', 'F', 'two') + record(3, 'stdout', 'P', 'thr'));
    writeFileSync(logPath, record(3, 'stdout', 'F', 'ee') + record(4, 'stderr', 'F', 'four'));
    expect(await collect(readLog(logPath, options()))).toEqual(['stdout:one', 'stdout:two', 'stdout:three', 'stderr:four']);
  });

  it('tail takes the last lines across rotated files; since drops older lines', async () => {
    writeFileSync(`${logPath}.1`, record(1, 'stdout', 'F', 'a') + record(2, 'stdout', 'F', 'b'));
    writeFileSync(logPath, record(3, 'stdout', 'F', 'c'));
    expect(await collect(readLog(logPath, options({ tail: 2 })))).toEqual(['stdout:b', 'stdout:c']);
    expect(await collect(readLog(logPath, options({ tail: 0 })))).toEqual([]);
    expect(await collect(readLog(logPath, options({ sinceMs: Date.parse('2026-11-23T10:00:02Z') })))).toEqual(['stdout:b', 'stdout:c']);
    expect(await collect(readLog(logPath, options({ tail: 1, sinceMs: Date.parse('2026-11-23T10:00:02Z') })))).toEqual(['stdout:c']);
  });

  it('a log that does not exist reads as empty', async () => {
    expect(await collect(readLog(logPath, options()))).toEqual([]);
  });

  it('follows new lines, through a rotation, until finished', async () => {
    writeFileSync(logPath, record(1, 'stdout', 'F', 'old'));
    let finished = false;
    const seen: string[] = [];
    const reading = (async () => {
      for await (const entry of readLog(logPath, options({ tail: 1, follow: true, pollIntervalMs: 20, finished: async () => finished }))) seen.push(entry.line.toString());
    })();
    const waitSeen = async (count: number): Promise<void> => {
      const deadline = Date.now() + 5_000;
      while (seen.length < count) {
        if (Date.now() > deadline) throw new Error(`saw only ${JSON.stringify(seen)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    // The last line written before the call: the reader follows from here on.
    await waitSeen(1);
    appendFileSync(logPath, record(2, 'stdout', 'F', 'new'));
    await waitSeen(2);
    // Rotation as the rotator and conmon do it: rename, the writer keeps its old file a moment, then a new file.
    renameSync(logPath, `${logPath}.1`);
    appendFileSync(`${logPath}.1`, record(3, 'stdout', 'F', 'late in the old file'));
    writeFileSync(logPath, record(4, 'stdout', 'F', 'first in the new file'));
    await waitSeen(4);
    finished = true;
    await reading;
    expect(seen).toEqual(['old', 'new', 'late in the old file', 'first in the new file']);
  });

  it('following stops when aborted', async () => {
    writeFileSync(logPath, record(1, 'stdout', 'F', 'x'));
    const abort = new AbortController();
    const reading = collect(readLog(logPath, options({ follow: true, signal: abort.signal, pollIntervalMs: 20 })));
    setTimeout(() => abort.abort(), 50);
    expect(await reading).toEqual(['stdout:x']);
  });
});

describe('shiftLogFiles', () => {
  it('moves the log to .1 and older files up, dropping past the limit', async () => {
    writeFileSync(logPath, 'current');
    writeFileSync(`${logPath}.1`, 'previous');
    writeFileSync(`${logPath}.2`, 'oldest');
    expect(await shiftLogFiles(logPath, 2)).toBe(true);
    const { readFileSync, existsSync } = await import('node:fs');
    expect(existsSync(logPath)).toBe(false);
    expect(readFileSync(`${logPath}.1`, 'utf8')).toBe('current');
    expect(readFileSync(`${logPath}.2`, 'utf8')).toBe('previous');
    expect(existsSync(`${logPath}.3`)).toBe(false);
    expect(await shiftLogFiles(logPath, 2)).toBe(false);
  });
});
