// A Signer whose signatures can be held and released by the test: makes "between two awaits" controllable.
import type { Signer } from '../../src/signing/signer';

export class GateSigner implements Signer {
  waiting = 0;
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  constructor(private readonly inner: Signer) {}
  get algorithm() {
    return this.inner.algorithm;
  }
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.gate = undefined;
    this.open?.();
  }
  async sign(data: Buffer): Promise<Buffer> {
    if (this.gate) {
      this.waiting++;
      await this.gate;
      this.waiting--;
    }
    return this.inner.sign(data);
  }
  async until(n: number): Promise<void> {
    const deadline = Date.now() + 10_000; // a bound, not a timing: the pre-signer first counts in a worker thread
    while (this.waiting < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.waiting} signatures waiting, expected ${n}`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }
}
