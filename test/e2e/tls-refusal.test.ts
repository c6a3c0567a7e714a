/**
 * Issue 5, "Done means": the gRPC port of a REAL manager (bin/skiffd, built) refuses untrusted
 * peers. Each refusal is seen from two clients that share no code with the server's checks: a real
 * `openssl s_client` and grpc-js. The cases: no client certificate, a self-signed certificate, an
 * expired certificate signed by the cluster CA (both claiming OU=admin, so only the chain and the
 * dates can refuse them), and a valid worker certificate calling manager-only RPCs. Positive
 * controls (an admin's listNodes, a handshake that the server completes) make sure every refusal
 * comes from the server's checks, not from a server that is down or a client that is misconfigured.
 * Also: the CLI renews an admin certificate past half its validity through this manager (and
 * names an expired one), and a worker's renewal stays a worker's; `skiff context create|ls|use|rm`
 * against it, through its local socket and over mutual TLS.
 */
import { spawn } from 'node:child_process';
import { X509Certificate, webcrypto } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CA_CERT_FILE,
  MANAGER_TLS_NAME,
  NODE_CERT_FILE,
  NODE_KEY_FILE,
  channelCredentials,
  certificateIdentity,
  channelOptions,
  createCertificateAuthority,
  createCertificateRequest,
  issueNodeCredentials,
  newNodeId,
  readCredentials,
  writeCertificateAuthority,
  writeCredentials,
  type CertificateAuthority,
  type NodeCredentials,
  type NodeRole,
} from '../../pki/index.js';
import * as x509 from '../../pki/x509.js';
import { ControlClient } from '../../proto/skiff/v1/control.js';
import { NodeCAClient } from '../../proto/skiff/v1/ca.js';
import { RaftClient } from '../../proto/skiff/v1/raft.js';
import { repoRoot, skiff, waitFor } from './helpers.js';
import { LoopbackManager, acceptsTcp, freePortPair } from './loopback-manager.js';

/** Deadline of one RPC and of one s_client run; a refusal takes milliseconds. */
const CALL_DEADLINE_MS = 15_000;
const MANAGER_START_DEADLINE_MS = 60_000;
const MS_PER_DAY = 24 * 60 * 60 * 1000;
const crypto = webcrypto as unknown as Crypto;
const EC_KEY: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const EC_SIGNING: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

let dataDir = '';
let port = 0;
let manager: LoopbackManager | undefined;
let ca: CertificateAuthority;
/** The client identities under test, by case; each also lives in `<dataDir>/clients/<case>`. */
const clients = new Map<string, NodeCredentials>();

beforeAll(async () => {
  if (!existsSync(join(repoRoot, 'dist/cli/skiffd.js'))) throw new Error('cannot start skiffd: dist/cli/skiffd.js is missing; run `npm run build` first');
  await checkOpensslInstalled();
  dataDir = await mkdtemp(join(tmpdir(), 'skiff-e2e-tls-'));
  ca = await createCertificateAuthority();
  // The layout of `skiff init` (cli/commands/init.ts): the CA in <dataDir>/ca, the node's in <dataDir>/certs.
  await writeCertificateAuthority(join(dataDir, 'ca'), ca);
  await writeCredentials(join(dataDir, 'certs'), await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'manager', ipAddresses: ['127.0.0.1'] }));
  for (const role of ['admin', 'worker'] as const) clients.set(role, await issueNodeCredentials(ca, { nodeId: newNodeId(), role }));
  clients.set('self-signed', await selfSignedCredentials());
  clients.set('expired', await caSignedCredentials('admin', -10 * MS_PER_DAY, -MS_PER_DAY));
  for (const [name, credentials] of clients) await writeCredentials(clientDir(name), credentials);
  // The CA that s_client trusts, apart from the manager's files (a manager may move its CA off disk).
  await mkdir(join(dataDir, 'clients'), { recursive: true });
  await writeFile(trustedCaFile(), ca.certPem);

  port = await freePortPair();
  manager = new LoopbackManager(dataDir, port, join(dataDir, 'skiff.sock'));
  manager.start();
  await manager.waitForLog(/^skiffd ready$/, MANAGER_START_DEADLINE_MS);
  await waitFor(`skiffd to accept TCP on 127.0.0.1:${port}`, MANAGER_START_DEADLINE_MS, async () => ((await acceptsTcp(port)) ? true : undefined));
});

afterAll(async () => {
  await manager?.stop();
  if (dataDir !== '') await rm(dataDir, { recursive: true, force: true });
});

describe('the manager gRPC port', () => {
  describe('positive controls', () => {
    it('answers listNodes for a valid admin certificate', async () => {
      const outcome = await listNodes(channelCredentials(credentialsOf('admin')));
      expect(outcome).toMatchObject({ ok: true });
    });

    it.each(['admin', 'worker'])('completes the TLS handshake with openssl s_client for a valid %s certificate', async (name) => {
      const result = await openSslClient(name);
      expect(result.verdict, result.stderr).toEqual({ kind: 'accepted' });
    });
  });

  describe('refuses the handshake', () => {
    const refusals: Array<{ name: string; title: string; openSslReason: RegExp }> = [
      // OpenSSL itself (SSL_VERIFY_FAIL_IF_NO_PEER_CERT) answers an empty Certificate message with this alert.
      { name: 'none', title: 'without a client certificate', openSslReason: /^alert certificate required$/ },
      // Node verifies the chain after OpenSSL's handshake and destroys the socket: an EOF, or an alert if that changes.
      { name: 'self-signed', title: 'with a self-signed certificate', openSslReason: /^(unexpected eof|connection reset|alert .+)$/ },
      { name: 'expired', title: 'with an expired certificate signed by the cluster CA', openSslReason: /^(unexpected eof|connection reset|alert .+)$/ },
    ];

    it.each(refusals)('$title (openssl s_client)', async ({ name, openSslReason }) => {
      const result = await openSslClient(name);
      expect(result.verdict, result.stderr).toMatchObject({ kind: 'refused', reason: expect.stringMatching(openSslReason) });
    });

    it.each(refusals)('$title (grpc-js listNodes fails with UNAVAILABLE)', async ({ name }) => {
      const credentials = name === 'none' ? grpc.credentials.createSsl(Buffer.from(ca.certPem)) : channelCredentials(credentialsOf(name));
      const outcome = await listNodes(credentials);
      expect(outcome).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
      // The client trusted the server; it was the server that ended the connection.
      if (!outcome.ok) expect(outcome.details).not.toMatch(/certificate verify failed|does not match|unable to verify/i);
    });
  });

  describe('refuses RPCs to a valid certificate of the wrong role', () => {
    it('Control listNodes: PERMISSION_DENIED naming the admin or manager role', async () => {
      const outcome = await listNodes(channelCredentials(credentialsOf('worker')));
      expect(outcome).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED });
      if (!outcome.ok) expect(outcome.details).toMatch(/admin or manager certificate/);
    });

    type RaftCall = Parameters<typeof raftCall>[1];
    const raftMethods: Array<{ method: string; call: RaftCall }> = [
      { method: 'Send', call: (client, options, done) => client.send(new grpc.Metadata(), options, (error) => done(error)).end() },
      { method: 'ForwardProposal', call: (client, options, done) => client.forwardProposal({ storeTransaction: new Uint8Array() }, new grpc.Metadata(), options, (error) => done(error)) },
      { method: 'Join', call: (client, options, done) => client.join({ addr: '127.0.0.1:1', storeFormat: 0 }, new grpc.Metadata(), options, (error) => done(error)) },
      { method: 'ReadIndex', call: (client, options, done) => client.readIndex({}, new grpc.Metadata(), options, (error) => done(error)) },
    ];
    // An admin may call the Control API but is no manager: Raft refuses it too.
    const raftCases = ['worker', 'admin'].flatMap((name) => raftMethods.map((method) => ({ name, ...method })));

    it.each(raftCases)('Raft $method from a $name: PERMISSION_DENIED naming the manager role', async ({ name, call }) => {
      const outcome = await raftCall(name, call);
      expect(outcome).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED });
      if (!outcome.ok) expect(outcome.details).toMatch(/manager certificate/);
    });
  });
});

describe('the CLI keeps its admin credential fresh', () => {
  /** A SKIFF_HOME whose one context reaches this manager with `credentials`; returns the home and its certs dir. */
  async function cliHome(name: string, credentials: NodeCredentials): Promise<{ home: string; certsDir: string }> {
    const home = join(dataDir, `cli-${name}`);
    const certsDir = join(home, 'certs', name);
    await writeCredentials(certsDir, credentials);
    const context = { managers: [`127.0.0.1:${port}`], caCertPath: join(certsDir, CA_CERT_FILE), certPath: join(certsDir, NODE_CERT_FILE), keyPath: join(certsDir, NODE_KEY_FILE) };
    await writeFile(join(home, 'config.json'), JSON.stringify({ current: name, contexts: { [name]: context } }), { mode: 0o600 });
    return { home, certsDir };
  }

  it('renews an admin certificate past half its validity on the next command: same identity, still admin, a new key and a full lifetime', async () => {
    const aging = await caSignedCredentials('admin', -60 * MS_PER_DAY, 30 * MS_PER_DAY);
    const { home, certsDir } = await cliHome('aging', aging);
    const first = await skiff(home, ['node', 'ls', '--format', 'json'], CALL_DEADLINE_MS * 2);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    // readCredentials checks that the new key matches the new certificate and that the CA signed it.
    const renewed = await readCredentials(certsDir);
    expect(renewed.keyPem).not.toBe(aging.keyPem);
    expect(certificateIdentity(renewed.certPem)).toEqual(certificateIdentity(aging.certPem));
    expect(certificateIdentity(renewed.certPem)?.role).toBe('admin');
    expect(Date.parse(new X509Certificate(renewed.certPem).validTo)).toBeGreaterThan(Date.now() + 80 * MS_PER_DAY);
    // The renewed credential works, and a fresh one is left alone.
    const second = await skiff(home, ['node', 'ls', '--format', 'json'], CALL_DEADLINE_MS * 2);
    expect(second.code, second.stderr).toBe(0);
    expect((await readCredentials(certsDir)).certPem).toBe(renewed.certPem);
  });

  it('names an expired admin certificate instead of an unreachable manager', async () => {
    const { home, certsDir } = await cliHome('expired', credentialsOf('expired'));
    const result = await skiff(home, ['node', 'ls'], CALL_DEADLINE_MS * 2);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(new RegExp(`its admin certificate ${join(certsDir, NODE_CERT_FILE)} expired on`));
  });

  it('a worker certificate renews as a worker: the renewal never hands out admin', async () => {
    const request = await createCertificateRequest();
    const client = new NodeCAClient(`127.0.0.1:${port}`, channelCredentials(credentialsOf('worker')), channelOptions());
    const outcome = await new Promise<string>((resolve, reject) => {
      client.renewNodeCertificate({ csr: request.csrDer, addr: '' }, new grpc.Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (error, response) =>
        error === null ? resolve(certificateIdentity(response.certPem)?.role ?? 'none') : reject(error),
      );
    }).finally(() => client.close());
    expect(outcome).toBe('worker');
  });
});

describe('skiff context', () => {
  it('create issues a new admin credential through the local socket or an admin context; ls, use and rm manage them', async () => {
    const home = join(dataDir, 'cli-contexts');
    const socket = join(dataDir, 'skiff.sock');
    const created = await skiff(home, ['-H', `unix://${socket}`, 'context', 'create', 'ops', '--use'], CALL_DEADLINE_MS * 2);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^Created context ops \(admin \S+, credential in .*certs\/ops\); it is the current context$/m);
    const ops = await readCredentials(join(home, 'certs', 'ops'));
    expect(certificateIdentity(ops.certPem)).toMatchObject({ role: 'admin', clusterId: ca.clusterId });
    const listed = await skiff(home, ['context', 'ls', '--format', 'json']);
    expect(JSON.parse(listed.stdout)).toEqual([{ name: 'ops', current: true, managers: [`127.0.0.1:${port}`] }]);
    // The new credential reaches the manager over mutual TLS, and an admin may make another.
    const nodes = await skiff(home, ['node', 'ls', '--format', 'json'], CALL_DEADLINE_MS * 2);
    expect(nodes.code, nodes.stderr).toBe(0);
    const second = await skiff(home, ['context', 'create', 'second'], CALL_DEADLINE_MS * 2);
    expect(second.code, second.stderr).toBe(0);
    expect(certificateIdentity((await readCredentials(join(home, 'certs', 'second'))).certPem)?.nodeId).not.toBe(certificateIdentity(ops.certPem)?.nodeId);
    const again = await skiff(home, ['context', 'create', 'second'], CALL_DEADLINE_MS * 2);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/cannot create context second: it exists already/);
    expect((await skiff(home, ['context', 'use', 'second'])).code).toBe(0);
    const removed = await skiff(home, ['context', 'rm', 'ops']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(existsSync(join(home, 'certs', 'ops'))).toBe(false);
    expect(JSON.parse((await skiff(home, ['context', 'ls', '--format', 'json'])).stdout)).toEqual([{ name: 'second', current: true, managers: [`127.0.0.1:${port}`] }]);
    expect((await skiff(home, ['service', 'ls'], CALL_DEADLINE_MS * 2)).code).toBe(0);
  });

  it('IssueAdminCredential: a worker is refused, and a malformed request is named', async () => {
    const issue = (name: string, csr: Uint8Array): Promise<CallOutcome> => {
      const client = new ControlClient(`127.0.0.1:${port}`, channelCredentials(credentialsOf(name)), channelOptions());
      return new Promise<CallOutcome>((resolve) => {
        client.issueAdminCredential({ csr }, new grpc.Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (error) => {
          client.close();
          resolve(error === null ? { ok: true } : { ok: false, code: error.code, details: error.details });
        });
      });
    };
    const request = await createCertificateRequest();
    expect(await issue('worker', request.csrDer)).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED });
    expect(await issue('admin', new Uint8Array([1, 2, 3]))).toMatchObject({ ok: false, code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^cannot issue an admin credential: csr: /) });
    expect(await issue('admin', new Uint8Array())).toMatchObject({ ok: false, code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/csr is empty/) });
    expect(await issue('admin', request.csrDer)).toEqual({ ok: true });
  });
});

// ----- credentials the cluster CA would never issue -----

function trustedCaFile(): string {
  return join(dataDir, 'clients', CA_CERT_FILE);
}

function clientDir(name: string): string {
  return join(dataDir, 'clients', name);
}

function credentialsOf(name: string): NodeCredentials {
  const credentials = clients.get(name);
  if (credentials === undefined) throw new Error(`no client credentials "${name}"`);
  return credentials;
}

/** A self-signed certificate with the subject of a real admin of this cluster. */
async function selfSignedCredentials(): Promise<NodeCredentials> {
  const keys = await crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: [{ CN: [newNodeId()] }, { OU: ['admin'] }, { O: [ca.clusterId] }],
      notBefore: new Date(now - MS_PER_DAY),
      notAfter: new Date(now + MS_PER_DAY),
      keys,
      signingAlgorithm: EC_SIGNING,
      extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false)],
    },
    crypto,
  );
  return { caCertPem: ca.certPem, certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/**
 * A certificate signed by the real cluster CA, shaped as pki/certificate-authority.ts issues
 * them (CN = node id, OU = role, O = cluster id, same extensions), valid from `fromMs` to `toMs`
 * after now (negative: before now). With both negative, it has expired.
 */
async function caSignedCredentials(role: NodeRole, fromMs: number, toMs: number): Promise<NodeCredentials> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await crypto.subtle.importKey('pkcs8', pemBody(ca.keyPem), EC_KEY, false, ['sign']);
  const keys = await crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: '02',
      subject: [{ CN: [newNodeId()] }, { OU: [role] }, { O: [ca.clusterId] }],
      issuer: caCert.subjectName,
      notBefore: new Date(now + fromMs),
      notAfter: new Date(now + toMs),
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: EC_SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { caCertPem: ca.certPem, certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

function pemBody(pem: string): Buffer<ArrayBuffer> {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const body = Buffer.from(await crypto.subtle.exportKey('pkcs8', key)).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

// ----- grpc-js -----

type CallOutcome = { ok: true } | { ok: false; code: grpc.status; details: string };

/** Options of every test channel: a private subchannel pool, so no connection is shared between cases. */
function testChannelOptions(): grpc.ChannelOptions {
  return { ...channelOptions(), 'grpc.use_local_subchannel_pool': 1 };
}

function outcomeOf(error: grpc.ServiceError | null): CallOutcome {
  return error === null ? { ok: true } : { ok: false, code: error.code, details: error.details };
}

async function listNodes(credentials: grpc.ChannelCredentials): Promise<CallOutcome> {
  const client = new ControlClient(`127.0.0.1:${port}`, credentials, testChannelOptions());
  try {
    return await new Promise((resolve) => {
      client.listNodes({}, new grpc.Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (error) => resolve(outcomeOf(error)));
    });
  } finally {
    client.close();
  }
}

async function raftCall(
  name: string,
  call: (client: RaftClient, options: Partial<grpc.CallOptions>, done: (error: grpc.ServiceError | null) => void) => void,
): Promise<CallOutcome> {
  const client = new RaftClient(`127.0.0.1:${port}`, channelCredentials(credentialsOf(name)), testChannelOptions());
  try {
    return await new Promise((resolve) => call(client, { deadline: Date.now() + CALL_DEADLINE_MS }, (error) => resolve(outcomeOf(error))));
  } finally {
    client.close();
  }
}

// ----- openssl s_client -----

/**
 * How a real TLS client sees the handshake. The criterion, and why it is deterministic:
 *
 * In TLS 1.3 the client finishes its handshake (sends Finished) BEFORE the server has judged the
 * client certificate, so "CONNECTION ESTABLISHED" and "Verify return code: 0" appear even when the
 * server then refuses. Without `-ign_eof`, s_client closes at once on stdin EOF and, depending on
 * who wins the race, never reads the server's verdict (tried: a refused client exits 0). So:
 * stdin is /dev/null and `-ign_eof` keeps s_client reading until the SERVER ends the connection;
 * the client never writes application data, so no RST can swallow an alert.
 *
 * `-brief` keeps stdout for application data only. An HTTP/2 server (`-alpn h2`) always speaks
 * first, with a SETTINGS frame, but only after it accepted the connection. Hence:
 *   accepted: a complete HTTP/2 frame header arrives on stdout (type 0x04, SETTINGS); we then stop s_client;
 *   refused:  s_client exits non-zero by itself with not one byte of application data, after it
 *             verified the server (`Verification: OK`, so the refusal is the server's), with the
 *             reason from stderr: a TLS alert, an unexpected EOF or a reset.
 */
type OpenSslVerdict = { kind: 'accepted' } | { kind: 'refused'; reason: string } | { kind: 'inconclusive'; why: string };

/** Length of an HTTP/2 frame header; byte 3 is the frame type. */
const HTTP2_FRAME_HEADER_BYTES = 9;
const HTTP2_SETTINGS_FRAME_TYPE = 0x04;

async function openSslClient(name: string): Promise<{ verdict: OpenSslVerdict; stderr: string }> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', trustedCaFile(), '-servername', MANAGER_TLS_NAME,
    '-verify_hostname', MANAGER_TLS_NAME, '-verify_return_error', '-alpn', 'h2', '-brief', '-ign_eof'];
  if (name !== 'none') args.push('-cert', join(clientDir(name), NODE_CERT_FILE), '-key', join(clientDir(name), NODE_KEY_FILE));
  const child = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = Buffer.alloc(0);
  let stderr = '';
  let accepted = false;
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`openssl s_client (${name}) neither got application data nor exited within ${CALL_DEADLINE_MS} ms:\n${stderr}`));
    }, CALL_DEADLINE_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout = Buffer.concat([stdout, chunk]);
      if (!accepted && stdout.length >= HTTP2_FRAME_HEADER_BYTES) {
        accepted = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  return { verdict: judge(stdout, stderr, exitCode, accepted), stderr };
}

function judge(stdout: Buffer, stderr: string, exitCode: number | null, accepted: boolean): OpenSslVerdict {
  if (!/^Verification: OK$/m.test(stderr) || !stderr.includes(`Verified peername: ${MANAGER_TLS_NAME}`)) {
    return { kind: 'inconclusive', why: 'the client did not verify the server (so a failure may be the client\'s own)' };
  }
  if (accepted) {
    return stdout[3] === HTTP2_SETTINGS_FRAME_TYPE ? { kind: 'accepted' } : { kind: 'inconclusive', why: 'application data that is not an HTTP/2 SETTINGS frame' };
  }
  if (exitCode === 0 || stdout.length > 0) return { kind: 'inconclusive', why: `exit ${String(exitCode)} with ${stdout.length} bytes of application data` };
  const alert = /alert ([a-z ]+?):/.exec(stderr);
  if (alert?.[1] !== undefined) return { kind: 'refused', reason: `alert ${alert[1]}` };
  if (stderr.includes('unexpected eof while reading')) return { kind: 'refused', reason: 'unexpected eof' };
  if (/errno=104|connection reset/i.test(stderr)) return { kind: 'refused', reason: 'connection reset' };
  return { kind: 'inconclusive', why: 'no alert, EOF or reset in the output' };
}

async function checkOpensslInstalled(): Promise<void> {
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn('openssl', ['version'], { stdio: 'ignore' });
    child.once('error', () => resolve(null));
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error('cannot run openssl: it is not installed (scripts/install-deps.sh installs it)');
}
