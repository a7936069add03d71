// A signature-rate token bucket on a monotonic clock: in any interval T at most burst + rate × T tokens are taken;
// time beyond a full bucket is not made up afterwards.
import type { Clock } from '../clock';

/** Tokens short of a whole one by less than this count as whole: float rounding must not cost a timer turn. */
const EPSILON = 1e-9;

export class TokenBucket {
  private tokens: number;
  private last: number;

  /** `ratePerSecond` 0: no rate ceiling (every method answers as if the bucket were always full). */
  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.last = clock.monotonicMs();
  }

  /** Milliseconds until the bucket holds `need` tokens (0: it does now). */
  msUntil(need: number): number {
    if (this.ratePerSecond <= 0) return 0;
    this.refill();
    const short = need - this.tokens;
    return short <= EPSILON ? 0 : (short / this.ratePerSecond) * 1000;
  }

  take(): void {
    if (this.ratePerSecond > 0) this.tokens -= 1;
  }

  /** Whole tokens in the bucket now. */
  available(): number {
    if (this.ratePerSecond <= 0) return Infinity;
    this.refill();
    return Math.floor(this.tokens + EPSILON);
  }

  private refill(): void {
    const now = this.clock.monotonicMs();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
  }
}
