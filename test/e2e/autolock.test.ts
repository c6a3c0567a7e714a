/**
 * Encryption at rest with autolock, on a real manager made by `skiff init`: with autolock on,
 * nothing under the data dir holds a service name, a secret's value or a private key in
 * plaintext; a restarted manager refuses to serve and says why until `skiff unlock` gets the
 * key; a wrong key is refused; turning autolock off lets it restart on its own again.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, skiff, waitFor, type CliResult } from './helpers.js';
import { LoopbackManager, acceptsTcp, freePortPair } from './loopback-manager.js';

const home = mkdtempSync(join(tmpdir(), 'skiff-e2e-autolock-home-'));
const root = mkdtempSync(join(tmpdir(), 'skiff-e2e-autolock-'));
const dataDir = join(root, 'data');
const suffix = randomBytes(4).toString('hex');
const serviceName = `zebra${suffix}`;
const secretValue = `SECRET-VALUE-${randomBytes(8).toString('hex')}`;
let manager: LoopbackManager;
let unlockKey = '';

/** Every regular file under `dir`. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return filesUnder(path);
    return entry.isFile() ? [path] : [];
  });
}

/** `skiff ARGS` through the manager's local socket, with `input` on stdin. */
function local(args: string[], input?: string): Promise<CliResult> {
  if (input === undefined) return skiff(home, ['-H', `unix://${manager.controlSocket}`, ...args], 30_000);
  return new Promise((resolve, reject) => {
    const child = spawn(join(repoRoot, 'bin/skiff'), ['-H', `unix://${manager.controlSocket}`, ...args], { env: { ...process.env, SKIFF_HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

beforeAll(async () => {
  const port = await freePortPair();
  const init = await skiff(home, ['init', '--data-dir', dataDir, '--advertise-addr', `127.0.0.1:${port}`, '--context', 'autolock']);
  expect(init.code, init.stderr).toBe(0);
  manager = new LoopbackManager(dataDir, port, join(root, 'skiff.sock'));
  manager.start();
  await manager.waitForLog(/^skiffd ready$/);
});

afterAll(async () => {
  await manager?.stop();
  rmSync(root, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

describe('autolock', () => {
  it('enable prints an unlock key, and the manager re-wraps its keys with it', async () => {
    expect((await local(['service', 'create', '--detach', '--name', serviceName, 'demo/web:v1'])).code).toBe(0);
    const secret = await local(['secret', 'create', `s${suffix}`, '-'], secretValue);
    expect(secret.stderr).toBe('');
    const enabled = await local(['autolock', 'enable']);
    expect(enabled.stderr).toBe('');
    unlockKey = /(SKFKEY-\S+)/.exec(enabled.stdout)?.[1] ?? '';
    expect(unlockKey).toMatch(/^SKFKEY-1-/);
    expect((await local(['autolock', 'key'])).stdout.trim()).toBe(unlockKey);
    await waitFor('keys wrapped with the unlock key', 10_000, async () => {
      const dek = JSON.parse(readFileSync(join(dataDir, 'keys', 'dek.json'), 'utf8')) as { autolock?: boolean };
      return dek.autolock === true && readFileSync(join(dataDir, 'certs', 'node.key'), 'utf8').includes('ENCRYPTED PRIVATE KEY') ? true : undefined;
    });
  });

  it('a restarted manager stays locked, says why, and serves nothing', async () => {
    await manager.stop();
    manager.start();
    await manager.waitForLog(/this manager is locked/);
    const refused = await local(['service', 'ls']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('this manager is locked (autolock is on and it restarted); run `skiff unlock`');
    expect(await acceptsTcp(manager.port)).toBe(false);
  });

  it('with autolock on, no file under the data dir holds a service name, a secret value or a private key in plaintext', () => {
    const files = filesUnder(dataDir);
    expect(files.some((path) => path.includes(join('raft', 'wal')))).toBe(true);
    for (const path of files) {
      if (statSync(path).size === 0) continue;
      const bytes = readFileSync(path);
      expect(bytes.includes(serviceName), path).toBe(false);
      expect(bytes.includes(secretValue), path).toBe(false);
      expect(bytes.includes(Buffer.from(secretValue).toString('base64')), path).toBe(false);
      expect(bytes.includes('-----BEGIN PRIVATE KEY-----'), path).toBe(false);
      expect(bytes.includes('-----BEGIN EC PRIVATE KEY-----'), path).toBe(false);
    }
  });

  it('a wrong key is refused; the right one unlocks and every object is there', async () => {
    const wrong = await local(['unlock'], `SKFKEY-1-${randomBytes(32).toString('base64url')}\n`);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/cannot unlock: .*(wrong|does not unwrap|unlock key)/i);
    const right = await local(['unlock'], `${unlockKey}\n`);
    expect(right.stderr).toBe('');
    expect(right.stdout).toContain('Manager unlocked.');
    await manager.waitForLog(/^skiffd ready$/);
    const services = await waitFor('the service list after unlock', 30_000, async () => {
      const result = await local(['service', 'ls', '--format', 'json']);
      return result.code === 0 ? (JSON.parse(result.stdout) as Array<{ name: string }>) : undefined;
    });
    expect(services.map((service) => service.name)).toEqual([serviceName]);
  });

  it('rotate-key replaces the unlock key: after a restart the old one is refused and the new one unlocks', async () => {
    const rotated = await local(['autolock', 'rotate-key']);
    expect(rotated.stderr).toBe('');
    const fresh = /(SKFKEY-\S+)/.exec(rotated.stdout)?.[1] ?? '';
    expect(fresh).toMatch(/^SKFKEY-1-/);
    expect(fresh).not.toBe(unlockKey);
    await waitFor('the manager to re-wrap with the new key', 10_000, async () => ((await local(['autolock', 'key'])).stdout.trim() === fresh ? true : undefined));
    // Re-wrapping is asynchronous on each manager: wait until the node key opens with the new key only.
    await waitFor('node.key re-encrypted', 10_000, async () => {
      const { createPrivateKey } = await import('node:crypto');
      try {
        createPrivateKey({ key: readFileSync(join(dataDir, 'certs', 'node.key'), 'utf8'), passphrase: fresh });
        return true;
      } catch {
        return undefined;
      }
    });
    await manager.stop();
    manager.start();
    await manager.waitForLog(/this manager is locked/);
    expect((await local(['unlock'], `${unlockKey}\n`)).code).toBe(1);
    expect((await local(['unlock'], `${fresh}\n`)).stdout).toContain('Manager unlocked.');
    await manager.waitForLog(/^skiffd ready$/);
  });

  it('after disable, the manager restarts without a key', async () => {
    expect((await local(['autolock', 'disable'])).code).toBe(0);
    await waitFor('node.key decrypted', 10_000, async () => (readFileSync(join(dataDir, 'certs', 'node.key'), 'utf8').includes('ENCRYPTED') ? undefined : true));
    await manager.stop();
    manager.start();
    await manager.waitForLog(/^skiffd ready$/);
    const services = await local(['service', 'ls', '--format', 'json']);
    expect((JSON.parse(services.stdout) as Array<{ name: string }>).map((service) => service.name)).toEqual([serviceName]);
  });
});
