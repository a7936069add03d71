// HSM metrics: signatures, latency, errors and limiter rejections as they happen; sessions, readiness and
// queue depth read from the live objects at scrape time.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Lane, RejectReason, SigningLimiter } from '../signing/signing-limiter';
import type { HsmObserver, HsmToken } from '../hsm/token';

export class HsmMetrics implements HsmObserver {
  private readonly signatures: Counter<'token' | 'key' | 'mechanism' | 'outcome'>;
  private readonly signSeconds: Histogram<'token' | 'key'>;
  private readonly errors: Counter<'token' | 'code'>;
  private readonly rejections: Counter<'limiter' | 'reason'>;
  private readonly readiness: Counter<'token' | 'ready'>;
  private tokens: readonly HsmToken[] = [];
  private limiters: readonly SigningLimiter[] = [];

  constructor(registry: Registry) {
    this.signatures = new Counter({
      name: 'ocsp_hsm_signatures_total',
      help: 'Signature operations sent to the HSM, by outcome (ok, error, timeout, unavailable).',
      labelNames: ['token', 'key', 'mechanism', 'outcome'],
      registers: [registry],
    });
    this.signSeconds = new Histogram({
      name: 'ocsp_hsm_sign_duration_seconds',
      help: 'Time the HSM took per signature.',
      labelNames: ['token', 'key'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.errors = new Counter({
      name: 'ocsp_hsm_errors_total',
      help: 'PKCS#11 faults by CKR code.',
      labelNames: ['token', 'code'],
      registers: [registry],
    });
    this.rejections = new Counter({
      name: 'ocsp_hsm_limiter_rejections_total',
      help: 'Signatures refused by the signing limiter (answered tryLater), by reason.',
      labelNames: ['limiter', 'reason'],
      registers: [registry],
    });
    this.readiness = new Counter({
      name: 'ocsp_hsm_token_readiness_changes_total',
      help: 'Times a token became ready (ready="true") or lost its last working session (ready="false").',
      labelNames: ['token', 'ready'],
      registers: [registry],
    });
    const self = this;
    new Gauge({
      name: 'ocsp_hsm_sessions',
      help: 'PKCS#11 sessions by state (idle, in_use, broken).',
      labelNames: ['token', 'state'],
      registers: [registry],
      collect() {
        for (const t of self.tokens) {
          const c = t.sessionCounts();
          this.set({ token: t.name, state: 'idle' }, c.idle);
          this.set({ token: t.name, state: 'in_use' }, c.inUse);
          this.set({ token: t.name, state: 'broken' }, c.broken);
        }
      },
    });
    new Gauge({
      name: 'ocsp_hsm_token_ready',
      help: '1 when the token is logged in with a working session.',
      labelNames: ['token'],
      registers: [registry],
      collect() {
        for (const t of self.tokens) this.set({ token: t.name }, t.ready ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ocsp_hsm_limiter_queue_depth',
      help: 'Requests waiting for a signing permit, by lane.',
      labelNames: ['limiter', 'lane'],
      registers: [registry],
      collect() {
        for (const l of self.limiters) {
          for (const lane of ['live', 'presign'] as Lane[]) this.set({ limiter: l.name, lane }, l.queueDepth(lane));
        }
      },
    });
    new Gauge({
      name: 'ocsp_hsm_limiter_in_flight',
      help: 'Signatures holding a permit of the limiter now (compare with ocsp_hsm_limiter_max_concurrent).',
      labelNames: ['limiter'],
      registers: [registry],
      collect() {
        for (const l of self.limiters) this.set({ limiter: l.name }, l.inFlightCount);
      },
    });
    new Gauge({
      name: 'ocsp_hsm_limiter_max_concurrent',
      help: 'Signatures the limiter lets run at once (limits.maxConcurrent, by default the token\'s sessions).',
      labelNames: ['limiter'],
      registers: [registry],
      collect() {
        for (const l of self.limiters) this.set({ limiter: l.name }, l.maxConcurrent);
      },
    });
    new Gauge({
      name: 'ocsp_hsm_limiter_tokens',
      help: 'Signatures the limiter would allow right now (token bucket level; absent without a rate ceiling).',
      labelNames: ['limiter'],
      registers: [registry],
      collect() {
        for (const l of self.limiters) {
          const n = l.availableTokens();
          if (Number.isFinite(n)) this.set({ limiter: l.name }, n);
        }
      },
    });
  }

  watch(tokens: readonly HsmToken[], limiters: readonly SigningLimiter[]): void {
    this.tokens = tokens;
    this.limiters = limiters;
  }

  signed(token: string, key: string, mechanism: string, outcome: 'ok' | 'error' | 'timeout' | 'unavailable', seconds: number): void {
    this.signatures.inc({ token, key, mechanism, outcome });
    if (outcome === 'ok') this.signSeconds.observe({ token, key }, seconds);
  }

  hsmError(token: string, code: string): void {
    this.errors.inc({ token, code });
  }

  readinessChanged(token: string, ready: boolean): void {
    this.readiness.inc({ token, ready: String(ready) });
  }

  rejected(limiter: string, reason: RejectReason): void {
    this.rejections.inc({ limiter, reason });
  }
}
