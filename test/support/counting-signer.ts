// A signer that counts its signatures: the HSM's work is what pre-production and caching save.
import type { Signer } from '../../src/signing/signer';

export class CountingSigner implements Signer {
  count = 0;
  /** Signatures then finish after 0-4 ms, out of order, as HSM sessions do. */
  jitter = false;
  constructor(private readonly inner: Signer) {}
  get algorithm() {
    return this.inner.algorithm;
  }
  async sign(data: Buffer): Promise<Buffer> {
    this.count++;
    if (this.jitter) await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 5)));
    return this.inner.sign(data);
  }
}
