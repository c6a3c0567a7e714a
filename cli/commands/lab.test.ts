import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultLabName, formatStatusTable, labNameFor, parseCount, registerLabCommands } from './lab.js';

const savedLab = process.env['SKIFF_LAB'];
afterEach(() => {
  vi.restoreAllMocks();
  if (savedLab === undefined) delete process.env['SKIFF_LAB'];
  else process.env['SKIFF_LAB'] = savedLab;
});

describe('skiff lab command line', () => {
  it('defaultLabName follows $SKIFF_LAB, else "lab"', () => {
    delete process.env['SKIFF_LAB'];
    expect(defaultLabName()).toBe('lab');
    process.env['SKIFF_LAB'] = 'ci7';
    expect(defaultLabName()).toBe('ci7');
  });

  it('labNameFor prefers --name, then $SKIFF_LAB, and falls back to "lab" when the current context is no lab', async () => {
    const home = mkdtempSync(join(tmpdir(), 'skiff-labname-'));
    const savedHome = process.env['SKIFF_HOME'];
    process.env['SKIFF_HOME'] = home;
    try {
      writeFileSync(join(home, 'config.json'), JSON.stringify({ current: 'nolab123', contexts: {} }));
      process.env['SKIFF_LAB'] = 'fromenv';
      expect(await labNameFor('flag')).toBe('flag');
      expect(await labNameFor(undefined)).toBe('fromenv');
      delete process.env['SKIFF_LAB'];
      expect(await labNameFor(undefined)).toBe('lab');
    } finally {
      if (savedHome === undefined) delete process.env['SKIFF_HOME'];
      else process.env['SKIFF_HOME'] = savedHome;
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('parseCount accepts whole numbers and names the flag otherwise', () => {
    expect(parseCount('--workers', '0')).toBe(0);
    expect(parseCount('--managers', '3')).toBe(3);
    expect(() => parseCount('--managers', '-1')).toThrow('cannot use --managers "-1"');
    expect(() => parseCount('--workers', '1.5')).toThrow(/--workers/);
  });

  it('formatStatusTable prints name, addr, role, pid and dataDir, then the registry', () => {
    const table = formatStatusTable({
      name: 'lab',
      registry: '198.18.0.1:5000',
      registryPid: 42,
      subnet: '198.18.0.0/24',
      hosts: [
        { name: 'h1', addr: '198.18.0.11', role: 'manager', pid: 123, dataDir: '/var/lib/skiff-lab/lab/h1', nodeId: 'n1', netns: 'skiff-lab-h1' },
        { name: 'h2', addr: '198.18.0.12', role: 'worker', pid: 0, dataDir: '/var/lib/skiff-lab/lab/h2', nodeId: 'n2', netns: 'skiff-lab-h2' },
      ],
    });
    expect(table.split('\n')).toEqual([
      'NAME  ADDR         ROLE     PID  DATADIR',
      'h1    198.18.0.11  manager  123  /var/lib/skiff-lab/lab/h1',
      'h2    198.18.0.12  worker   0    /var/lib/skiff-lab/lab/h2',
      'registry: 198.18.0.1:5000',
      '',
    ]);
  });

  it('registers every lab verb, and exec takes its command after --', async () => {
    const program = new Command('skiff').exitOverride();
    registerLabCommands(program);
    const lab = program.commands.find((command) => command.name() === 'lab');
    expect(lab?.commands.map((command) => command.name()).sort()).toEqual(['down', 'exec', 'heal', 'kill', 'partition', 'restart', 'start', 'status', 'up']);
    const exec = lab?.commands.find((command) => command.name() === 'exec');
    const seen: unknown[] = [];
    exec?.action((host: string, argv: string[]) => {
      seen.push(host, argv);
    });
    await program.parseAsync(['lab', 'exec', 'h1', '--', 'ip', '-4', 'addr'], { from: 'user' });
    expect(seen).toEqual(['h1', ['ip', '-4', 'addr']]);
  });
});
