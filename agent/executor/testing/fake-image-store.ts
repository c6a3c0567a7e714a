/**
 * An in-memory ImageStore for executor tests: every reference "pulls" to one fixed image unless
 * a test made it fail; pulls can be held open to test what happens while a task prepares.
 */
import type { ImageHealthcheck, ImageStore, PulledImage } from '../../image/types.js';
import { ImageError } from '../../image/types.js';

export const FAKE_IMAGE_CMD = ['httpd', '-f'];

export class FakeImageStore implements ImageStore {
  /** Every reference passed to pull(), in order. */
  readonly pulls: string[] = [];
  private readonly failures = new Map<string, Error>();
  private gate: Promise<void> | undefined;
  /** The HEALTHCHECK every image declares, when a test sets one. */
  healthcheck: ImageHealthcheck | undefined;

  /** Makes every pull of `reference` throw `error` (an ImageError not_found by default). */
  fail(reference: string, error: Error = new ImageError('not_found', `cannot pull ${reference}: manifest unknown`)): void {
    this.failures.set(reference, error);
  }

  /** Holds every pull until the returned function is called. */
  hold(): () => void {
    let release: () => void = () => undefined;
    this.gate = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.gate = undefined;
      release();
    };
  }

  async pull(reference: string): Promise<PulledImage> {
    this.pulls.push(reference);
    if (this.gate !== undefined) await this.gate;
    const failure = this.failures.get(reference);
    if (failure !== undefined) throw failure;
    return this.image(reference);
  }

  async getLocal(reference: string): Promise<PulledImage | undefined> {
    return this.failures.has(reference) ? undefined : this.image(reference);
  }

  private image(reference: string): PulledImage {
    return {
      reference,
      digest: `sha256:${'ab'.repeat(32)}`,
      config: { entrypoint: [], cmd: [...FAKE_IMAGE_CMD], env: ['PATH=/bin'], workingDir: '', user: '', ...(this.healthcheck === undefined ? {} : { healthcheck: this.healthcheck }) },
      layerDirs: ['/layers/base'],
    };
  }
}
