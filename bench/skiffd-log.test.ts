import { describe, expect, it } from 'vitest';
import { taskStateSpan } from './skiffd-log.js';

const line = (time: string, taskId: string, transition: string): string => JSON.stringify({ time, level: 'info', msg: 'task state', taskId, transition, err: '' });

describe('taskStateSpan', () => {
  it('spans from the first accepted to the last running of the given tasks', () => {
    const log = [
      line('2026-11-23T10:00:00.100Z', 'a', 'assigned -> accepted'),
      line('2026-11-23T10:00:00.110Z', 'b', 'assigned -> accepted'),
      'not json at all (a child wrote this) task state',
      line('2026-11-23T10:00:00.150Z', 'a', 'starting -> running'),
      line('2026-11-23T10:00:00.300Z', 'b', 'starting -> running'),
      line('2026-11-23T10:00:00.050Z', 'other', 'assigned -> accepted'),
      line('2026-11-23T10:00:09.000Z', 'other', 'starting -> running'),
    ].join('\n');
    expect(taskStateSpan(log, ['a', 'b'])).toEqual({
      tasks: 2,
      firstAcceptedAt: Date.parse('2026-11-23T10:00:00.100Z'),
      lastRunningAt: Date.parse('2026-11-23T10:00:00.300Z'),
      spanMs: 200,
      perTaskMs: [50, 190],
    });
  });

  it('leaves out tasks without both lines, and is undefined when none has them', () => {
    const log = [line('2026-11-23T10:00:00.100Z', 'a', 'assigned -> accepted'), line('2026-11-23T10:00:00.200Z', 'b', 'starting -> running')].join('\n');
    expect(taskStateSpan(log, ['a', 'b'])).toBeUndefined();
    const withA = `${log}\n${line('2026-11-23T10:00:00.180Z', 'a', 'starting -> running')}`;
    expect(taskStateSpan(withA, ['a', 'b'])).toMatchObject({ tasks: 1, spanMs: 80, perTaskMs: [80] });
  });

  it('keeps the first accepted of a task that was accepted twice', () => {
    const log = [
      line('2026-11-23T10:00:00.100Z', 'a', 'assigned -> accepted'),
      line('2026-11-23T10:00:00.400Z', 'a', 'assigned -> accepted'),
      line('2026-11-23T10:00:00.500Z', 'a', 'starting -> running'),
    ].join('\n');
    expect(taskStateSpan(log, ['a'])?.spanMs).toBe(400);
  });
});
