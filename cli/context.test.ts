import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONFIG_FILE, contextCertsDir, createContext, loadContext, removeContext, saveContext, skiffHome, useContext, type ContextEntry } from './context.js';

const entry: ContextEntry = {
  managers: ['198.18.0.11:4242'],
  caCertPath: '/home/u/.skiff/certs/lab/ca.crt',
  certPath: '/home/u/.skiff/certs/lab/node.crt',
  keyPath: '/home/u/.skiff/certs/lab/node.key',
};

let home: string;
const saved = { home: process.env['SKIFF_HOME'], context: process.env['SKIFF_CONTEXT'] };
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'skiff-home-'));
  process.env['SKIFF_HOME'] = home;
  delete process.env['SKIFF_CONTEXT'];
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
  for (const [key, value] of [['SKIFF_HOME', saved.home], ['SKIFF_CONTEXT', saved.context]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

describe('cli contexts', () => {
  it('skiffHome follows $SKIFF_HOME and contextCertsDir sits under it', () => {
    expect(skiffHome()).toBe(home);
    expect(contextCertsDir('lab')).toBe(join(home, 'certs', 'lab'));
    // A relative $SKIFF_HOME is made absolute: contexts store absolute paths only.
    process.env['SKIFF_HOME'] = 'relative-home';
    expect(skiffHome()).toBe(join(process.cwd(), 'relative-home'));
  });

  it('saveContext with makeCurrent is what loadContext returns by default; file is 0600', async () => {
    await saveContext('lab', entry, { makeCurrent: true });
    expect(await loadContext()).toEqual({ name: 'lab', ...entry });
    expect((await stat(join(home, CONFIG_FILE))).mode & 0o777).toBe(0o600);
    const onDisk: unknown = JSON.parse(await readFile(join(home, CONFIG_FILE), 'utf8'));
    expect(onDisk).toEqual({ current: 'lab', contexts: { lab: entry } });
  });

  it('saveContext without makeCurrent keeps the current context; $SKIFF_CONTEXT overrides it', async () => {
    await saveContext('a', entry, { makeCurrent: true });
    await saveContext('b', { ...entry, managers: ['10.0.0.1:4242'] }, { makeCurrent: false });
    expect((await loadContext()).name).toBe('a');
    process.env['SKIFF_CONTEXT'] = 'b';
    expect((await loadContext()).managers).toEqual(['10.0.0.1:4242']);
    expect((await loadContext('a')).name).toBe('a');
  });

  it('loadContext of a missing context says how to create one', async () => {
    await expect(loadContext()).rejects.toThrow('cannot find context (no current context): run `skiff lab up` or `skiff init`');
    await expect(loadContext('nope')).rejects.toThrow('cannot find context nope: run `skiff lab up` or `skiff init`');
  });

  it('removeContext drops the context and clears current when it pointed there', async () => {
    await saveContext('a', entry, { makeCurrent: true });
    await saveContext('b', entry, { makeCurrent: false });
    expect(await removeContext('a')).toBe(true);
    expect(await removeContext('a')).toBe(false);
    await expect(loadContext()).rejects.toThrow(/cannot find context/);
    expect((await loadContext('b')).name).toBe('b');
  });

  it('useContext switches to an existing context and refuses an unknown one', async () => {
    await saveContext('a', entry, { makeCurrent: true });
    await saveContext('b', entry, { makeCurrent: false });
    await useContext('b');
    expect((await loadContext()).name).toBe('b');
    await expect(useContext('nope')).rejects.toThrow('cannot use context nope: there is none of that name');
    expect((await loadContext()).name).toBe('b');
  });

  it('createContext refuses a name in use without writing anything, and creates a new one', async () => {
    await saveContext('a', entry, { makeCurrent: true });
    let writes = 0;
    const write = async (): Promise<ContextEntry> => {
      writes += 1;
      return { ...entry, managers: ['10.0.0.9:4242'] };
    };
    await expect(createContext('a', write, { makeCurrent: true })).rejects.toThrow('cannot create context a: it exists already (skiff context rm a first)');
    expect(writes).toBe(0);
    expect(await loadContext('a')).toEqual({ name: 'a', ...entry });
    await createContext('b', write, { makeCurrent: true });
    expect(writes).toBe(1);
    expect(await loadContext()).toEqual({ name: 'b', ...entry, managers: ['10.0.0.9:4242'] });
  });

  it('concurrent saveContext calls lose no context', async () => {
    const names = Array.from({ length: 8 }, (_, index) => `c${index}`);
    await Promise.all(names.map((name) => saveContext(name, entry, { makeCurrent: false })));
    for (const name of names) expect((await loadContext(name)).name).toBe(name);
  });

  it('bad input is refused naming the field', async () => {
    await expect(saveContext('../x', entry, { makeCurrent: true })).rejects.toThrow(/context name/);
    await expect(saveContext('a', { ...entry, managers: [] }, { makeCurrent: true })).rejects.toThrow(/"managers"/);
    await expect(saveContext('a', { ...entry, keyPath: 'relative' }, { makeCurrent: true })).rejects.toThrow(/"keyPath"/);
    await writeFile(join(home, CONFIG_FILE), '{"contexts": []}');
    await expect(loadContext('a')).rejects.toThrow(/"contexts"/);
  });
});
