import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Secret } from '../../proto/skiff/v1/objects.js';
import { dataRow, inspectJson, MAX_INPUT_BYTES, readInput, timeAgo } from './secret.js';

const CREATED_MS = Date.UTC(2026, 10, 23, 14, 0, 0);

function secret(data = new Uint8Array(0)): Secret {
  return { meta: { id: 'abcdef0123456789abcdef012', version: 7, createdAtMs: CREATED_MS, updatedAtMs: CREATED_MS + 1_000 }, spec: { name: 'db-password', labels: { team: 'db' }, data } };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skiff-secret-cli-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('secret and config commands', () => {
  it('data rows have exactly the public ls fields, with ISO times', () => {
    expect(dataRow(secret())).toEqual({ id: 'abcdef0123456789abcdef012', name: 'db-password', createdAt: '2026-11-23T14:00:00.000Z', updatedAt: '2026-11-23T14:00:01.000Z', labels: { team: 'db' } });
  });

  it('inspect output never has a data field, even if a server sent one', () => {
    const value = `v-${randomBytes(8).toString('hex')}`;
    const json = inspectJson('secret', secret(new TextEncoder().encode(value)));
    expect(JSON.stringify(json)).not.toContain(Buffer.from(value).toString('base64'));
    expect(json).toMatchObject({ meta: { id: 'abcdef0123456789abcdef012' }, spec: { name: 'db-password', labels: { team: 'db' } } });
    expect(Object.keys((json as { spec: object }).spec)).not.toContain('data');
    expect(Object.keys((inspectJson('config', secret()) as { spec: object }).spec)).not.toContain('data');
  });

  it('timeAgo reads like docker ls', () => {
    expect(timeAgo(CREATED_MS, CREATED_MS + 500)).toBe('just now');
    expect(timeAgo(CREATED_MS, CREATED_MS + 1_000)).toBe('1 second ago');
    expect(timeAgo(CREATED_MS, CREATED_MS + 125_000)).toBe('2 minutes ago');
    expect(timeAgo(CREATED_MS, CREATED_MS + 3 * 3_600_000)).toBe('3 hours ago');
    expect(timeAgo(CREATED_MS, CREATED_MS + 2 * 86_400_000)).toBe('2 days ago');
  });

  it('readInput reads a file or stdin byte for byte', async () => {
    const bytes = randomBytes(200_000);
    await writeFile(join(dir, 'value'), bytes);
    expect(Buffer.from(await readInput(join(dir, 'value'))).equals(bytes)).toBe(true);
    expect(Buffer.from(await readInput('-', Readable.from([bytes.subarray(0, 10), bytes.subarray(10)]))).equals(bytes)).toBe(true);
  });

  it('readInput refuses a missing file and input over the limit, naming them', async () => {
    await expect(readInput(join(dir, 'missing'))).rejects.toThrow(`cannot read ${join(dir, 'missing')}: no such file`);
    await writeFile(join(dir, 'huge'), Buffer.alloc(MAX_INPUT_BYTES + 1));
    await expect(readInput(join(dir, 'huge'))).rejects.toThrow(`cannot read ${join(dir, 'huge')}: it holds more than ${MAX_INPUT_BYTES} bytes`);
    await expect(readInput('-', Readable.from([Buffer.alloc(MAX_INPUT_BYTES), Buffer.alloc(1)]))).rejects.toThrow(`cannot read stdin: it holds more than ${MAX_INPUT_BYTES} bytes`);
  });
});
