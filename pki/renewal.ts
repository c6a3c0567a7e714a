// Automatic renewal of a node's certificate: at a random point between 50% and 80% of its
// validity (so a cluster's nodes do not all renew at once), with a fresh key each time. The
// new credentials are written to disk first, then handed to the running servers and channels.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { certificateIdentity, type NodeRole } from './certificate-identity.js';
import { writeCredentials } from './credentials-store.js';
import type { LiveCredentials } from './live-credentials.js';

export const RENEW_AT_MIN_FRACTION = 0.5;
export const RENEW_AT_MAX_FRACTION = 0.8;
/** Retry delay after a failed renewal, at most (it never waits past the certificate's expiry). */
export const RENEW_RETRY_MAX_MS = 30_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** When to renew a certificate valid from `notBeforeMs` to `notAfterMs`, as a delay from `nowMs`. */
export function renewalDelayMs(notBeforeMs: number, notAfterMs: number, nowMs: number, random: number): number {
  const fraction = RENEW_AT_MIN_FRACTION + (RENEW_AT_MAX_FRACTION - RENEW_AT_MIN_FRACTION) * random;
  return Math.max(0, notBeforeMs + (notAfterMs - notBeforeMs) * fraction - nowMs);
}

/** What the manager answers to a renewal request. */
export interface RenewedCertificate {
  certPem: string;
  caCertPem: string;
}

export interface RenewerOptions {
  credentials: LiveCredentials;
  /** The credentials directory the new files go to. */
  dir: string;
  /** Sends a certificate request (DER) to a manager and returns what it issued. */
  renew: (csrDer: Uint8Array) => Promise<RenewedCertificate>;
  /** Called after every successful renewal, with the old and new role (promotion, demotion). */
  onRenewed?: (previousRole: NodeRole | undefined, role: NodeRole | undefined) => void;
  log: { info(message: string, fields?: Record<string, unknown>): void; warn(message: string, fields?: Record<string, unknown>): void };
  /** The passphrase node.key is kept under (an autolocked manager's unlock key), if any. */
  keyPassphrase?: () => string | undefined;
  random?: () => number;
  now?: () => number;
}

export class CertificateRenewer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: RenewerOptions) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  /** Renews now (a role change was announced); concurrent calls share one renewal. */
  renewNow(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.running ??= this.renewOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(delayMs?: number): void {
    if (this.stopped) return;
    const now = (this.options.now ?? Date.now)();
    const cert = new X509Certificate(this.options.credentials.certPem);
    const delay = delayMs ?? renewalDelayMs(Date.parse(cert.validFrom), Date.parse(cert.validTo), now, (this.options.random ?? Math.random)());
    // Timers hold at most 2^31-1 ms (about 24 days): a longer wait is taken in steps.
    if (delay > MAX_TIMER_MS) {
      this.timer = setTimeout(() => this.schedule(), MAX_TIMER_MS);
    } else {
      this.timer = setTimeout(() => void this.renewNow().catch(() => undefined), delay);
    }
    this.timer.unref();
  }

  private async renewOnce(): Promise<void> {
    const previousRole = certificateIdentity(this.options.credentials.certPem)?.role;
    try {
      // Imported here: the x509 code is a few MiB of a worker's memory, and renewal is rare.
      const { createCertificateRequest } = await import('./certificate-authority.js');
      const request = await createCertificateRequest();
      const issued = await this.options.renew(request.csrDer);
      const next = { caCertPem: issued.caCertPem, certPem: issued.certPem, keyPem: request.keyPem };
      const cert = new X509Certificate(next.certPem);
      if (!cert.checkPrivateKey(createPrivateKey(next.keyPem))) {
        throw new Error('the issued certificate is not for the key we sent');
      }
      const keyPassphrase = this.options.keyPassphrase?.();
      await writeCredentials(this.options.dir, next, keyPassphrase === undefined ? {} : { keyPassphrase });
      this.options.credentials.update(next);
      const role = certificateIdentity(next.certPem)?.role;
      this.options.log.info('node certificate renewed', { expires: cert.validTo, role });
      this.options.onRenewed?.(previousRole, role);
      this.schedule();
    } catch (error) {
      const cert = new X509Certificate(this.options.credentials.certPem);
      const left = Date.parse(cert.validTo) - (this.options.now ?? Date.now)();
      const retry = Math.max(1_000, Math.min(RENEW_RETRY_MAX_MS, left / 10));
      this.options.log.warn('node certificate renewal failed; retrying', { error: String(error), retryMs: retry });
      this.schedule(retry);
      throw error;
    }
  }
}
