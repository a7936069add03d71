// A Signer that takes a permit from each of its limiters (per key, then per token) before signing.
import type { SignatureAlgorithm, Signer } from './signer';
import type { Permit, SignContext, SigningLimiter } from './signing-limiter';

export class LimitedSigner implements Signer {
  readonly algorithm: SignatureAlgorithm;

  constructor(
    private readonly inner: Signer,
    private readonly limiters: readonly SigningLimiter[],
  ) {
    this.algorithm = inner.algorithm;
  }

  async sign(data: Buffer, ctx: SignContext = { lane: 'live' }): Promise<Buffer> {
    const permits: Permit[] = [];
    try {
      for (const l of this.limiters) permits.push(await l.acquire(ctx));
      return await this.inner.sign(data, ctx);
    } finally {
      for (const p of permits) p.release();
    }
  }
}
