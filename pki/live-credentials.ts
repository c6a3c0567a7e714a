// A node's credentials that can change while it runs (renewal, CA rotation, promotion). grpc-js
// reads them through the CertificateProvider interface, so servers and channels built from a
// LiveCredentials use the new certificate for every handshake after `update`.
import type * as grpc from '@grpc/grpc-js';
import type { NodeCredentials } from './credentials-store.js';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

export class LiveCredentials implements NodeCredentials, grpc.experimental.CertificateProvider {
  private current: NodeCredentials;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly changeListeners = new Set<(creds: NodeCredentials) => void>();

  constructor(initial: NodeCredentials) {
    this.current = { ...initial };
  }

  get caCertPem(): string {
    return this.current.caCertPem;
  }

  get certPem(): string {
    return this.current.certPem;
  }

  get keyPem(): string {
    return this.current.keyPem;
  }

  /** A plain copy of the current credentials. */
  snapshot(): NodeCredentials {
    return { ...this.current };
  }

  /** Replaces the credentials; every listener hears of it at once. */
  update(next: NodeCredentials): void {
    this.current = { ...next };
    for (const listener of this.caListeners) listener({ caCertificate: Buffer.from(next.caCertPem) });
    for (const listener of this.identityListeners) listener({ certificate: Buffer.from(next.certPem), privateKey: Buffer.from(next.keyPem) });
    for (const listener of this.changeListeners) listener(this.snapshot());
  }

  /** Calls `listener` after every update; returns a function that stops it. */
  onChange(listener: (creds: NodeCredentials) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // Later, not now: grpc-js registers its own watcher only after adding this listener.
    process.nextTick(() => {
      if (this.caListeners.has(listener)) listener({ caCertificate: Buffer.from(this.current.caCertPem) });
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => {
      if (this.identityListeners.has(listener)) listener({ certificate: Buffer.from(this.current.certPem), privateKey: Buffer.from(this.current.keyPem) });
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  /**
   * A provider whose identity is this node's certificate followed by the CA chain (what the join
   * port presents, so a joining node can pin the CA), kept current like the rest.
   */
  chainProvider(): grpc.experimental.CertificateProvider {
    const chain = (): IdentityUpdate => ({ certificate: Buffer.from(`${this.current.certPem.trimEnd()}\n${this.current.caCertPem}`), privateKey: Buffer.from(this.current.keyPem) });
    const listeners = new Map<IdentityListener, () => void>();
    return {
      addCaCertificateListener: () => undefined,
      removeCaCertificateListener: () => undefined,
      addIdentityCertificateListener: (listener) => {
        listeners.set(listener, this.onChange(() => listener(chain())));
        process.nextTick(() => {
          if (listeners.has(listener)) listener(chain());
        });
      },
      removeIdentityCertificateListener: (listener) => {
        listeners.get(listener)?.();
        listeners.delete(listener);
      },
    };
  }
}

type IdentityUpdate = grpc.experimental.IdentityCertificateUpdate;
