// Status change feed metrics: how long a revocation takes to reach this responder, how far behind its feed may
// be, and what failed to apply (issue: a revocation must never lose to a cached "good").
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FollowerObserver } from '../source/change-follower';

export class ChangeMetrics implements FollowerObserver {
  private readonly latency: Histogram;
  private readonly failures: Counter;
  private readonly productionFailures: Counter;
  /** The current follower's lag (a reload builds a new follower). */
  lagMs: () => number = () => 0;

  constructor(registry: Registry) {
    this.latency = new Histogram({
      name: 'ocsp_status_change_apply_seconds',
      help: 'Time from a status change being recorded (by any writer, any responder) to this responder applying it.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.failures = new Counter({
      name: 'ocsp_status_change_apply_failures_total',
      help: 'Attempts to apply status changes that failed (retried with backoff; answers from memory wait meanwhile).',
      registers: [registry],
    });
    this.productionFailures = new Counter({
      name: 'ocsp_status_change_production_failures_total',
      help: 'Responses that could not be produced upon issuance or revocation (store on demand or the pre-signer covers them).',
      registers: [registry],
    });
    const self = this;
    new Gauge({
      name: 'ocsp_change_feed_lag_seconds',
      help: 'Seconds since the change feed was last proved current (0 while SQLite has nothing pending); answers from memory stop past store.maxStaleness.',
      registers: [registry],
      collect() {
        this.set(self.lagMs() / 1000);
      },
    });
  }

  applied(lagMs: number): void {
    this.latency.observe(lagMs / 1000);
  }

  failed(): void {
    this.failures.inc();
  }

  productionFailed(): void {
    this.productionFailures.inc();
  }
}
