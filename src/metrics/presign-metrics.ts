// Pre-signer and stored-response metrics: backlog, runs, responses signed, and the freshness figures the CA/B
// Forum deadlines are about (responses due for refresh, time to the earliest nextUpdate).
import { Counter, Gauge, Registry } from 'prom-client';
import type { Clock } from '../clock';
import type { PreSignerObserver, ResponseHealth } from '../presign/pre-signer';

export class PreSignerMetrics implements PreSignerObserver {
  private readonly backlog: Gauge<'ca'>;
  private readonly lastRun: Gauge;
  private readonly lastRunSeconds: Gauge;
  private readonly signed: Counter<'ca'>;
  private readonly runs: Counter<'result'>;
  private health: ResponseHealth | undefined;

  constructor(registry: Registry, clock: Clock) {
    this.backlog = new Gauge({ name: 'ocsp_presigner_backlog', help: 'Certificates due (missing or to refresh) at the start of the last pre-signer run.', labelNames: ['ca'], registers: [registry] });
    this.lastRun = new Gauge({ name: 'ocsp_presigner_last_run_timestamp_seconds', help: 'When the last pre-signer run ended (Unix time).', registers: [registry] });
    this.lastRunSeconds = new Gauge({ name: 'ocsp_presigner_last_run_duration_seconds', help: 'How long the last pre-signer run took.', registers: [registry] });
    this.signed = new Counter({ name: 'ocsp_presigner_responses_signed_total', help: 'Responses the pre-signer signed and stored.', labelNames: ['ca'], registers: [registry] });
    this.runs = new Counter({ name: 'ocsp_presigner_runs_total', help: 'Pre-signer runs by result (ok, failed).', labelNames: ['result'], registers: [registry] });
    const self = this;
    new Gauge({
      name: 'ocsp_stored_responses_due',
      help: 'Certificates of CAs with pre-production whose stored response is missing or past its refresh point (last health check).',
      labelNames: ['ca'],
      registers: [registry],
      collect() {
        for (const [ca, n] of self.health?.due ?? []) this.set({ ca }, n);
      },
    });
    new Gauge({
      name: 'ocsp_stored_responses_earliest_next_update_seconds',
      help: 'Seconds until the earliest nextUpdate among the latest stored responses of a CA (negative once passed).',
      labelNames: ['ca'],
      registers: [registry],
      collect() {
        const now = clock.now().getTime();
        for (const [ca, t] of self.health?.earliestNextUpdate ?? []) if (t) this.set({ ca }, (t.getTime() - now) / 1000);
      },
    });
    new Gauge({
      name: 'ocsp_stored_responses_past_update_time',
      help: 'CAs under compliance cabf: latest stored responses (of certificates not expired) past the update time CA/B Forum BR 4.9.9 requires (last health check).',
      labelNames: ['ca'],
      registers: [registry],
      collect() {
        for (const [ca, n] of self.health?.pastUpdateTime ?? []) this.set({ ca }, n);
      },
    });
  }

  runStarted(dueByCa: ReadonlyMap<string, number>): void {
    for (const [ca, n] of dueByCa) this.backlog.set({ ca }, n);
  }

  stored(ca: string, n: number): void {
    this.signed.inc({ ca }, n);
  }

  runFinished(ok: boolean, endedAt: Date, seconds: number): void {
    this.runs.inc({ result: ok ? 'ok' : 'failed' });
    this.lastRun.set(endedAt.getTime() / 1000);
    this.lastRunSeconds.set(seconds);
  }

  healthChecked(h: ResponseHealth): void {
    this.health = h;
  }
}
