/**
 * Benchmark "pki" (issue 5, point 1): which X.509 library issues Skiff's certificates. The design
 * card named node-forge; Skiff uses Node's WebCrypto with @peculiar/x509 (pki/certificate-authority.ts).
 * In one process it measures:
 *   - Skiff's own `issueCertificate` (ECDSA P-256, a fresh key per certificate), one at a time and
 *     with several in flight; and the same signing with the key made beforehand;
 *   - node-forge issuing an RSA-2048 certificate (the only key type it can sign with), with key
 *     generation (forge's default, which calls Node's native generator, and forge's pure-JS one)
 *     and without; @peculiar/x509 signing the same RSA-2048 certificate, to tell library from algorithm;
 *   - node-forge handed an EC key: it cannot; the errors are recorded, not thrown;
 *   - the cost of parsing and verifying a certificate with each library.
 * Every timed issuance is followed, outside the clock, by a 1 ms timer, so the event-loop delay
 * monitor sees each stall: `loop_block_max_ms` is the longest time one issuance kept the loop
 * (Raft ticks, heartbeats, every RPC) from running, to the monitor's 1 ms resolution.
 * Prints one JSON line on stdout; progress goes to stderr. Touches no disk and no network.
 *
 *   node dist/bench/pki.js [--runs N] [--pure-js-runs N]
 */
import { X509Certificate as NodeX509Certificate, createPublicKey, webcrypto } from 'node:crypto';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import forge from 'node-forge';
import { createCertificateAuthority, issueCertificate, newNodeId, type CertificateAuthority } from '../pki/index.js';
import * as x509 from '../pki/x509.js';
import { progress } from './bench-support.js';
import { percentile } from './stats.js';

export const DEFAULT_RUNS = 100;
export const MAX_RUNS = 10_000;
/** Pure-JS RSA-2048 key generation takes seconds per key: few samples by default. */
export const DEFAULT_PURE_JS_RUNS = 5;
/** Certificates in flight in the concurrent series (WebCrypto runs on libuv's thread pool). */
export const IN_FLIGHT = 4;
/** Parse and verify are microseconds each: each sample times a batch of this many. */
const MICRO_BATCH = 50;
const MS_PER_DAY = 24 * 60 * 60 * 1000;
const LIFETIME_DAYS = 90;
const crypto = webcrypto as unknown as Crypto;
const EC_KEY: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const EC_SIGNING: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const RSA_KEY: RsaHashedKeyGenParams = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };

export interface PkiArguments {
  runs: number;
  pureJsRuns: number;
}

/** Parses the flags; throws "cannot parse ..." naming the flag on bad input. */
export function parseArguments(argv: readonly string[]): PkiArguments {
  const parsed: PkiArguments = { runs: DEFAULT_RUNS, pureJsRuns: DEFAULT_PURE_JS_RUNS };
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index] ?? '';
    const [flag, inline] = argument.includes('=') ? [argument.slice(0, argument.indexOf('=')), argument.slice(argument.indexOf('=') + 1)] : [argument, undefined];
    const text = inline ?? argv[(index += 1)] ?? '';
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1 || value > MAX_RUNS) throw new Error(`cannot parse ${flag}: expected an integer in 1..${MAX_RUNS}, got ${JSON.stringify(text)}`);
    if (flag === '--runs') parsed.runs = value;
    else if (flag === '--pure-js-runs') parsed.pureJsRuns = value;
    else throw new Error(`cannot parse arguments: unknown argument ${JSON.stringify(argument)} (usage: pki [--runs N] [--pure-js-runs N])`);
  }
  return parsed;
}

/** One series of issuances: throughput, latency per certificate, and the longest event-loop stall. */
interface IssueReport {
  runs: number;
  certs_per_s: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  loop_block_max_ms: number;
}

/** Milliseconds with two decimals: in-process timings are well above performance.now()'s resolution. */
const round2 = (value: number): number => Math.round(value * 100) / 100;

/** Times `runs` sequential calls of `once` after `warmUps` untimed ones (default: a tenth as many, at least 3). */
async function measureIssue(label: string, runs: number, once: () => Promise<unknown> | unknown, warmUps = Math.max(3, Math.ceil(runs / 10))): Promise<IssueReport> {
  progress(`${label}: ${runs} runs`);
  for (let warm = 0; warm < warmUps; warm += 1) await once();
  const samples: number[] = [];
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  // The monitor's first tick only sets its baseline: let it happen before the first timed call.
  await delay(5);
  for (let run = 0; run < runs; run += 1) {
    const startedAt = performance.now();
    await once();
    samples.push(performance.now() - startedAt);
    // Outside the clock: let the timers phase run, so the loop-delay monitor records this stall.
    await delay(1);
  }
  loopDelay.disable();
  const totalMs = samples.reduce((sum, sample) => sum + sample, 0);
  return {
    runs,
    certs_per_s: Math.round((runs / totalMs) * 1000 * 10) / 10,
    p50_ms: round2(percentile(samples, 50)),
    p90_ms: round2(percentile(samples, 90)),
    p99_ms: round2(percentile(samples, 99)),
    max_ms: round2(Math.max(...samples)),
    loop_block_max_ms: round2(loopDelay.max / 1e6),
  };
}

/** `runs` calls of `once` with IN_FLIGHT running at a time: certificates per second of wall time. */
async function measureConcurrent(label: string, runs: number, once: () => Promise<unknown>): Promise<{ runs: number; in_flight: number; certs_per_s: number }> {
  progress(`${label}: ${runs} runs, ${IN_FLIGHT} in flight`);
  let next = 0;
  const startedAt = performance.now();
  const worker = async (): Promise<void> => {
    while (next < runs) {
      next += 1;
      await once();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return { runs, in_flight: IN_FLIGHT, certs_per_s: Math.round((runs / (performance.now() - startedAt)) * 1000 * 10) / 10 };
}

/** Operations per second and microseconds per operation, from `runs` batches of MICRO_BATCH. */
async function measureMicro(label: string, runs: number, once: () => Promise<unknown> | unknown): Promise<{ ops_per_s: number; p50_us: number; p99_us: number }> {
  progress(`${label}: ${runs} x ${MICRO_BATCH}`);
  for (let warm = 0; warm < MICRO_BATCH; warm += 1) await once();
  const perOpUs: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    const startedAt = performance.now();
    for (let op = 0; op < MICRO_BATCH; op += 1) await once();
    perOpUs.push(((performance.now() - startedAt) * 1000) / MICRO_BATCH);
  }
  const p50 = percentile(perOpUs, 50);
  return { ops_per_s: Math.round(1e6 / p50), p50_us: Math.round(p50 * 10) / 10, p99_us: Math.round(percentile(perOpUs, 99) * 10) / 10 };
}

// ----- @peculiar/x509 + WebCrypto, as pki/certificate-authority.ts does it -----

interface WebCryptoCa {
  cert: x509.X509Certificate;
  signingKey: CryptoKey;
  publicKey: CryptoKey;
  signingAlgorithm: Algorithm;
}

async function webCryptoCa(ca: CertificateAuthority): Promise<WebCryptoCa> {
  const der = Buffer.from(ca.keyPem.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64');
  const cert = new x509.X509Certificate(ca.certPem);
  return { cert, signingKey: await crypto.subtle.importKey('pkcs8', der, EC_KEY, false, ['sign']), publicKey: await cert.publicKey.export(crypto), signingAlgorithm: EC_SIGNING };
}

async function rsaWebCryptoCa(): Promise<WebCryptoCa> {
  const keys = await crypto.subtle.generateKey(RSA_KEY, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    { serialNumber: '01', name: 'CN=bench-rsa-ca', notBefore: new Date(), notAfter: new Date(Date.now() + MS_PER_DAY), keys, signingAlgorithm: RSA_KEY, extensions: [new x509.BasicConstraintsExtension(true, 0, true)] },
    crypto,
  );
  return { cert, signingKey: keys.privateKey, publicKey: keys.publicKey, signingAlgorithm: RSA_KEY };
}

/** A worker certificate like issueCertificate's, for a public key made beforehand. */
async function webCryptoSign(ca: WebCryptoCa, publicKey: CryptoKey): Promise<string> {
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: [{ CN: [newNodeId()] }, { OU: ['worker'] }, { O: ['benchcluster'] }],
      issuer: ca.cert.subjectName,
      notBefore: new Date(now),
      notAfter: new Date(now + LIFETIME_DAYS * MS_PER_DAY),
      publicKey,
      signingKey: ca.signingKey,
      signingAlgorithm: ca.signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return cert.toString('pem');
}

function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}

// ----- node-forge (RSA only) -----

interface ForgeCa {
  cert: forge.pki.Certificate;
  keys: forge.pki.rsa.KeyPair;
}

function forgeCa(): ForgeCa {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const cert = forgeCertificate(keys.publicKey, [{ name: 'commonName', value: 'bench-forge-ca' }]);
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert, keys };
}

function forgeCertificate(publicKey: forge.pki.rsa.PublicKey, subject: forge.pki.CertificateField[]): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date();
  cert.validity.notAfter = new Date(Date.now() + LIFETIME_DAYS * MS_PER_DAY);
  cert.setSubject(subject);
  return cert;
}

/** The same worker certificate with node-forge: RSA-2048, SHA-256. */
function forgeSign(ca: ForgeCa, publicKey: forge.pki.rsa.PublicKey): string {
  const cert = forgeCertificate(publicKey, [
    { name: 'commonName', value: newNodeId() },
    { shortName: 'OU', value: 'worker' },
    { name: 'organizationName', value: 'benchcluster' },
  ]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyAgreement: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(ca.keys.privateKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** What node-forge says when handed Skiff's EC material: each attempt's error, or "ok". */
function forgeWithEcKeys(ca: CertificateAuthority): Record<string, string> {
  const attempt = (action: () => unknown): string => {
    try {
      action();
      return 'ok';
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  };
  const ecPublicKeyPem = createPublicKey(ca.keyPem).export({ type: 'spki', format: 'pem' }).toString();
  const ed25519 = forge.pki.ed25519.generateKeyPair();
  return {
    read_ec_private_key: attempt(() => forge.pki.privateKeyFromPem(ca.keyPem)),
    read_ec_public_key: attempt(() => forge.pki.publicKeyFromPem(ecPublicKeyPem)),
    read_ec_ca_certificate: attempt(() => forge.pki.certificateFromPem(ca.certPem)),
    // forge's only non-RSA signature keys (Ed25519) are not accepted by certificate signing either.
    sign_certificate_with_ed25519: attempt(() => {
      const cert = forgeCertificate(forge.pki.rsa.generateKeyPair({ bits: 1024 }).publicKey, [{ name: 'commonName', value: 'x' }]);
      cert.setIssuer(cert.subject.attributes);
      cert.sign(ed25519.privateKey as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
    }),
  };
}

// ----- the run -----

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  const loadBefore = loadavg();
  const ca = await createCertificateAuthority({ clusterId: 'benchcluster' });
  const ecCa = await webCryptoCa(ca);
  const ecLeafKey = (await crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])).publicKey;
  const rsaCa = await rsaWebCryptoCa();
  const rsaLeafKey = (await crypto.subtle.generateKey(RSA_KEY, true, ['sign', 'verify'])).publicKey;
  const fCa = forgeCa();
  const forgeLeafKey = forge.pki.rsa.generateKeyPair({ bits: 2048 }).publicKey;
  const issue = (): Promise<unknown> => issueCertificate(ca, { commonName: newNodeId(), role: 'worker' });

  const skiff = await measureIssue('skiff issueCertificate (ECDSA P-256, key included)', args.runs, issue);
  const skiffConcurrent = await measureConcurrent('skiff issueCertificate concurrent', args.runs, issue);
  const peculiarEcSignOnly = await measureIssue('@peculiar/x509 ECDSA P-256 sign only', args.runs, () => webCryptoSign(ecCa, ecLeafKey));
  const peculiarRsaSignOnly = await measureIssue('@peculiar/x509 RSA-2048 sign only', args.runs, () => webCryptoSign(rsaCa, rsaLeafKey));
  const forgeWithKey = await measureIssue('node-forge RSA-2048, key included (native keygen)', args.runs, () => forgeSign(fCa, forge.pki.rsa.generateKeyPair({ bits: 2048 }).publicKey));
  const forgeSignOnly = await measureIssue('node-forge RSA-2048 sign only', args.runs, () => forgeSign(fCa, forgeLeafKey));
  // forge.options is missing from @types/node-forge; forge.js defines it.
  const forgeOptions = (forge as unknown as { options: { usePureJavaScript: boolean } }).options;
  forgeOptions.usePureJavaScript = true;
  const forgePureJs = await measureIssue('node-forge RSA-2048, key included (pure-JS keygen)', args.pureJsRuns, () => forgeSign(fCa, forge.pki.rsa.generateKeyPair({ bits: 2048 }).publicKey), 0);
  forgeOptions.usePureJavaScript = false;
  const forgeEc = forgeWithEcKeys(ca);

  const ecLeafPem = (await issueCertificate(ca, { commonName: newNodeId(), role: 'worker' })).certPem;
  const rsaLeafPem = forgeSign(fCa, forgeLeafKey);
  const nodeEcLeaf = new NodeX509Certificate(ecLeafPem);
  const nodeRsaLeaf = new NodeX509Certificate(rsaLeafPem);
  const nodeEcCaKey = new NodeX509Certificate(ca.certPem).publicKey;
  const nodeRsaCaKey = new NodeX509Certificate(forge.pki.certificateToPem(fCa.cert)).publicKey;
  const peculiarEcLeaf = new x509.X509Certificate(ecLeafPem);
  const forgeRsaLeaf = forge.pki.certificateFromPem(rsaLeafPem);
  const micro = Math.max(1, Math.ceil(args.runs / 5));
  const parse = {
    node_x509_ecdsa: await measureMicro('parse: node:crypto X509Certificate', micro, () => new NodeX509Certificate(ecLeafPem)),
    peculiar_ecdsa: await measureMicro('parse: @peculiar/x509', micro, () => new x509.X509Certificate(ecLeafPem)),
    forge_rsa: await measureMicro('parse: node-forge', micro, () => forge.pki.certificateFromPem(rsaLeafPem)),
  };
  const verify = {
    node_x509_ecdsa: await measureMicro('verify: node:crypto ECDSA', micro, () => nodeEcLeaf.verify(nodeEcCaKey)),
    node_x509_rsa: await measureMicro('verify: node:crypto RSA', micro, () => nodeRsaLeaf.verify(nodeRsaCaKey)),
    peculiar_ecdsa: await measureMicro('verify: @peculiar/x509 ECDSA', micro, () => peculiarEcLeaf.verify({ publicKey: ecCa.publicKey, signatureOnly: true }, crypto)),
    forge_rsa: await measureMicro('verify: node-forge RSA', micro, () => fCa.cert.verify(forgeRsaLeaf)),
  };

  const require = createRequire(import.meta.url);
  const versionOf = (name: string): string => (require(`${name}/package.json`) as { version: string }).version;
  process.stdout.write(`${JSON.stringify({
    bench: 'pki',
    runs: args.runs,
    issue: {
      skiff_ecdsa_p256: skiff,
      skiff_ecdsa_p256_concurrent: skiffConcurrent,
      peculiar_ecdsa_p256_sign_only: peculiarEcSignOnly,
      peculiar_rsa2048_sign_only: peculiarRsaSignOnly,
      forge_rsa2048_with_keygen: forgeWithKey,
      forge_rsa2048_sign_only: forgeSignOnly,
      forge_rsa2048_with_pure_js_keygen: forgePureJs,
    },
    forge_ecdsa: { supported: Object.values(forgeEc).every((result) => result === 'ok'), attempts: forgeEc },
    parse,
    verify,
    host: {
      cpus: availableParallelism(),
      cpu_model: cpus()[0]?.model ?? 'unknown',
      kernel: release(),
      node: process.version,
      openssl: process.versions.openssl,
      peculiar_x509: versionOf('@peculiar/x509'),
      node_forge: versionOf('node-forge'),
      loadavg_before: loadBefore.map(round2),
      loadavg_after: loadavg().map(round2),
    },
  })}\n`);
}

main().catch((error: unknown) => {
  progress(`failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
