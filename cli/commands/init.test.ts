import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { caDigest, certificateIdentity, readCertificateAuthority, readClusterBootstrap, readCredentials } from '../../pki/index.js';
import { loadContext } from '../context.js';
import { initCluster, registerInitCommand, splitAddress } from './init.js';

let root: string;
const savedHome = process.env['SKIFF_HOME'];
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'skiff-init-'));
  process.env['SKIFF_HOME'] = join(root, 'home');
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(root, { recursive: true, force: true });
  if (savedHome === undefined) delete process.env['SKIFF_HOME'];
  else process.env['SKIFF_HOME'] = savedHome;
});

function program(): Command {
  const result = new Command('skiff').exitOverride();
  result.configureOutput({ writeErr: () => undefined });
  registerInitCommand(result);
  return result;
}

describe('skiff init', () => {
  it('initCluster writes the CA, manager and admin credentials and selects the context', async () => {
    const dataDir = join(root, 'data');
    const result = await initCluster({ dataDir, advertiseAddr: '10.1.2.3:4242', contextName: 'prod', hostname: 'm1' });
    const ca = await readCertificateAuthority(join(dataDir, 'ca'));
    expect(ca.clusterId).toBe(result.ca.clusterId);
    expect((await stat(join(dataDir, 'ca', 'ca.key'))).mode & 0o777).toBe(0o600);
    const manager = await readCredentials(join(dataDir, 'certs'));
    expect(certificateIdentity(manager.certPem)).toEqual({ nodeId: result.nodeId, role: 'manager', clusterId: ca.clusterId });
    const context = await loadContext();
    expect(context).toMatchObject({ name: 'prod', managers: ['10.1.2.3:4242'] });
    const admin = await readCredentials(join(process.env['SKIFF_HOME'] ?? '', 'certs', 'prod'));
    expect(certificateIdentity(admin.certPem)?.role).toBe('admin');
    expect(context.certPath).toBe(join(process.env['SKIFF_HOME'] ?? '', 'certs', 'prod', 'node.crt'));
  });

  it('skiff init prints the skiffd command and refuses a second init naming the CA file', async () => {
    const dataDir = join(root, 'data');
    const output: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      output.push(String(chunk));
      return true;
    });
    await program().parseAsync(['init', '--data-dir', dataDir, '--advertise-addr', '10.1.2.3:4242'], { from: 'user' });
    expect(output.join('')).toContain(`skiffd --manager --data-dir ${dataDir} --listen-addr 0.0.0.0:4242 --advertise-addr 10.1.2.3:4242`);
    expect((await loadContext()).name).toBe('default');
    // The join commands, with tokens that pin this cluster's CA and that the first manager will adopt.
    const bootstrap = await readClusterBootstrap(join(dataDir, 'ca'));
    const digest = caDigest((await readCertificateAuthority(join(dataDir, 'ca'))).certPem);
    expect(bootstrap?.workerToken.split('-')[2]).toBe(digest);
    expect(bootstrap?.managerToken).not.toBe(bootstrap?.workerToken);
    expect(output.join('')).toContain(`skiff join --token ${bootstrap?.workerToken} 10.1.2.3:4242`);
    expect(output.join('')).toContain(`skiff join --token ${bootstrap?.managerToken} 10.1.2.3:4242`);
    await expect(program().parseAsync(['init', '--data-dir', dataDir, '--advertise-addr', '10.1.2.3:4242'], { from: 'user' })).rejects.toThrow(
      `${join(dataDir, 'ca', 'ca.crt')} already exists`,
    );
    expect(bootstrap).toMatchObject({ defaultAddressPool: '10.0.0.0/8', defaultSubnetSize: 24 });
  });

  it('initCluster records the address pool for the first manager and refuses a bad one before writing anything', async () => {
    const dataDir = join(root, 'pool');
    await initCluster({ dataDir, advertiseAddr: '10.1.2.3:4242', contextName: 'pool', defaultAddressPool: '198.19.0.0/16', defaultSubnetSize: 26 });
    expect(await readClusterBootstrap(join(dataDir, 'ca'))).toMatchObject({ defaultAddressPool: '198.19.0.0/16', defaultSubnetSize: 26 });
    const badDir = join(root, 'bad-pool');
    await expect(initCluster({ dataDir: badDir, advertiseAddr: '10.1.2.3:4242', contextName: 'bad', defaultAddressPool: '198.19.0.1/16' })).rejects.toThrow('invalid --default-addr-pool: "198.19.0.1/16" has host bits set');
    await expect(initCluster({ dataDir: badDir, advertiseAddr: '10.1.2.3:4242', contextName: 'bad', defaultAddressPool: '198.19.0.0/16', defaultSubnetSize: 12 })).rejects.toThrow('invalid --default-addr-pool-mask-length 12');
    await expect(stat(join(badDir, 'ca'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('splitAddress names the flag on bad input', () => {
    expect(splitAddress('advertise-addr', '10.0.0.1:4242')).toEqual({ ip: '10.0.0.1', port: 4242 });
    expect(() => splitAddress('advertise-addr', 'host:4242')).toThrow(/advertise-addr/);
    expect(() => splitAddress('advertise-addr', '10.0.0.1:99999')).toThrow(/advertise-addr/);
  });
});
