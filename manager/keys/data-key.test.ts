import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DATA_KEY_FILE, DataKeyFileError, MalformedUnlockKeyError, WrongUnlockKeyError, checkUnlockKey, newUnlockKey, openDataKey, wrapDataKey, type OpenedDataKey } from './data-key.js';

let root: string;
let dir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'skiff-data-key-'));
  dir = join(root, 'keys');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function dekOf(opened: OpenedDataKey): Buffer {
  if (opened.status !== 'unlocked') throw new Error(`expected unlocked, got ${opened.status}`);
  return opened.dek;
}
const readJson = async (): Promise<Record<string, unknown>> => JSON.parse(await readFile(join(dir, DATA_KEY_FILE), 'utf8')) as Record<string, unknown>;

describe('unlock keys', () => {
  it('unlock keys are SKFKEY-1- and 32 random bytes in base64url, and pass their own check', () => {
    const key = newUnlockKey();
    expect(key).toMatch(/^SKFKEY-1-[A-Za-z0-9_-]{43}$/);
    expect(newUnlockKey()).not.toBe(key);
    expect(() => checkUnlockKey(key)).not.toThrow();
  });

  it('unlock keys that are malformed are refused with the problem named and the key not quoted', () => {
    const key = newUnlockKey();
    expect(() => checkUnlockKey(key.replace('SKFKEY-1-', 'SKF-1-'))).toThrow('cannot use unlock key: it does not start with "SKFKEY-1-"');
    expect(() => checkUnlockKey(key.slice(0, -1))).toThrow('it has 42 characters after "SKFKEY-1-", not 43');
    expect(() => checkUnlockKey(`${key.slice(0, -1)}!`)).toThrow('characters other than base64url');
    expect(() => checkUnlockKey(`${key.slice(0, -1)}B`)).toThrow(MalformedUnlockKeyError); // 'B' sets bits past the 32nd byte
    const thrown = ((): unknown => {
      try {
        checkUnlockKey(`${key}x`);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(thrown).toBeInstanceOf(MalformedUnlockKeyError);
    expect(String(thrown)).not.toContain(key.slice(9));
  });
});

describe('data key', () => {
  it('data key is created on first open (autolock off, mode 0600) and the same on reopen', async () => {
    const first = await openDataKey(dir);
    expect(first).toMatchObject({ status: 'unlocked', autolock: false });
    expect(dekOf(first)).toHaveLength(32);
    expect(dekOf(await openDataKey(dir))).toEqual(dekOf(first));
    // Without autolock an unlock key is not needed, and one given is not used.
    expect(await openDataKey(dir, newUnlockKey())).toEqual(first);
    expect((await stat(join(dir, DATA_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual([DATA_KEY_FILE]);
    expect(await readJson()).toMatchObject({ format: 'skiff-dek 1', autolock: false, kek: expect.any(String) });
  });

  it('data key with autolock keeps the key-encryption key off disk and opens only with the unlock key', async () => {
    const dek = dekOf(await openDataKey(dir));
    const unlockKey = newUnlockKey();
    await wrapDataKey(dir, dek, unlockKey);
    const file = await readJson();
    expect(file).toMatchObject({ format: 'skiff-dek 1', autolock: true, kdf: 'hkdf-sha256' });
    expect(file).not.toHaveProperty('kek');
    const text = await readFile(join(dir, DATA_KEY_FILE), 'utf8');
    expect(text).not.toContain(unlockKey.slice(9));
    expect(await openDataKey(dir)).toEqual({ status: 'locked' });
    expect(await openDataKey(dir, unlockKey)).toEqual({ status: 'unlocked', dek, autolock: true });
  });

  it('data key refuses the wrong unlock key with WrongUnlockKeyError naming the file', async () => {
    const dek = dekOf(await openDataKey(dir));
    await wrapDataKey(dir, dek, newUnlockKey());
    const opening = openDataKey(dir, newUnlockKey());
    await expect(opening).rejects.toBeInstanceOf(WrongUnlockKeyError);
    await expect(opening).rejects.toThrow(`cannot unlock the data key in ${join(dir, DATA_KEY_FILE)}: the unlock key is wrong`);
    await expect(openDataKey(dir, 'not-a-key')).rejects.toBeInstanceOf(MalformedUnlockKeyError);
  });

  it('data key rotation and disabling autolock keep the same data key', async () => {
    const dek = dekOf(await openDataKey(dir));
    const oldKey = newUnlockKey();
    const newKey = newUnlockKey();
    await wrapDataKey(dir, dek, oldKey);
    await wrapDataKey(dir, dekOf(await openDataKey(dir, oldKey)), newKey);
    await expect(openDataKey(dir, oldKey)).rejects.toBeInstanceOf(WrongUnlockKeyError);
    await wrapDataKey(dir, dekOf(await openDataKey(dir, newKey)), undefined);
    expect(await readJson()).toMatchObject({ autolock: false, kek: expect.any(String) });
    expect(await openDataKey(dir)).toEqual({ status: 'unlocked', dek, autolock: false });
    expect(await readdir(dir)).toEqual([DATA_KEY_FILE]);
  });

  it('data key refuses a corrupt or unknown file, naming it and the cause', async () => {
    const path = join(dir, DATA_KEY_FILE);
    await openDataKey(dir);
    const good = await readJson();
    await writeFile(path, '{"format":"skiff-dek 1",');
    await expect(openDataKey(dir)).rejects.toThrow(new RegExp(`^cannot read data key: ${path} is not JSON`));
    await writeFile(path, JSON.stringify({ ...good, format: 'skiff-dek 9' }));
    await expect(openDataKey(dir)).rejects.toThrow(`cannot read data key: ${path} has format "skiff-dek 9", not "skiff-dek 1"`);
    await writeFile(path, JSON.stringify({ ...good, kek: 'AAAA' }));
    await expect(openDataKey(dir)).rejects.toThrow(`${path} has no valid "kek" (base64 of 32 bytes)`);
    await writeFile(path, JSON.stringify({ ...good, kek: Buffer.alloc(32).toString('base64') }));
    await expect(openDataKey(dir)).rejects.toBeInstanceOf(DataKeyFileError);
    await expect(openDataKey(dir)).rejects.toThrow(`${path} holds a data key that does not unwrap`);
  });

  it('data key refuses to wrap a key that is not 32 bytes', async () => {
    await expect(wrapDataKey(dir, Buffer.alloc(16), undefined)).rejects.toThrow('cannot wrap data key: it is 16 bytes, not 32');
  });
});
