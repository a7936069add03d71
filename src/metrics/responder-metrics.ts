// Metrics of consistent revocation (README "Consistent revocation across responders"): this process's heartbeat and
// applied change, the publishing API's waits for every responder, and the responders the store lists as live.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock, Timer } from '../clock';
import type { WaitOutcome } from '../publish/responder-wait';
import type { ResponderRow } from '../store/responder-store';

/** What a heartbeat shows of itself (cluster/heartbeat.ts). */
export interface HeartbeatState {
  appliedSeq(): number;
  sinceLastMs(): number;
  held(): boolean;
}

export class HeartbeatMetrics {
  private readonly writes: Counter;
  /** The heartbeat in force; set once it exists. */
  state: HeartbeatState | undefined;

  constructor(registry: Registry) {
    this.writes = new Counter({
      name: 'ocsp_responder_heartbeats_total',
      help: 'Heartbeat rows this process wrote to the store, by result (ok, failed).',
      labelNames: ['result'],
      registers: [registry],
    });
    for (const result of ['ok', 'failed']) this.writes.labels({ result });
    const self = this;
    const gauge = (name: string, help: string, value: (s: HeartbeatState) => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          if (self.state) this.set(value(self.state));
        },
      });
    gauge('ocsp_responder_applied_change_seq', "The status change this process has applied up to (its change follower's position, as its heartbeat records it).", (s) => s.appliedSeq());
    gauge('ocsp_responder_heartbeat_age_seconds', 'Seconds since the last heartbeat this process recorded was sent (+Inf before the first).', (s) => s.sinceLastMs() / 1000);
    gauge('ocsp_responder_heartbeat_held', '1 while no heartbeat was recorded within the liveness window: answers from memory wait for the change feed to be proved current.', (s) => (s.held() ? 1 : 0));
  }

  wrote(ok: boolean): void {
    this.writes.labels({ result: ok ? 'ok' : 'failed' }).inc();
  }
}

export class PublishWaitMetrics {
  private readonly waits: Counter;
  private readonly seconds: Histogram;

  constructor(registry: Registry) {
    this.waits = new Counter({
      name: 'ocsp_publish_waits_total',
      help: 'Publishing requests that waited for every live responder (?wait=all), by result (applied, timeout).',
      labelNames: ['result'],
      registers: [registry],
    });
    for (const result of ['applied', 'timeout']) this.waits.labels({ result });
    this.seconds = new Histogram({
      name: 'ocsp_publish_wait_seconds',
      help: 'How long a publishing request waited for every live responder to apply its change.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
  }

  waited(o: WaitOutcome): void {
    this.waits.labels({ result: o.applied ? 'applied' : 'timeout' }).inc();
    this.seconds.observe(o.waitedMs / 1000);
  }
}

/** Read at scrape time (both gauges from one read), at most `boundMs`; a store that does not answer in time leaves the last values. */
export function registerClusterView(
  registry: Registry,
  clock: Clock,
  read: () => Promise<{ rows: ResponderRow[]; head: number }>,
  livenessMs: number,
  boundMs = 500,
): void {
  let last: { live: number; stale: number; lag: number } | undefined;
  let reading: Promise<typeof last> | undefined;
  const refresh = async () => {
    let timer: Timer | undefined;
    const timeout = new Promise<undefined>((r) => (timer = clock.setTimer(() => r(undefined), boundMs)));
    const got = await Promise.race([read().catch(() => undefined), timeout]);
    timer?.cancel();
    if (!got) return last;
    const live = got.rows.filter((r) => r.ageMs <= livenessMs);
    last = { live: live.length, stale: got.rows.length - live.length, lag: Math.max(0, ...live.map((r) => got.head - r.appliedSeq)) };
    return last;
  };
  const current = () => (reading ??= refresh().finally(() => (reading = undefined)));
  new Gauge({
    name: 'ocsp_cluster_responders',
    help: 'Responder processes the store lists, by state: live (heartbeat within the liveness window) or stale.',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const v = await current();
      if (!v) return;
      this.labels({ state: 'live' }).set(v.live);
      this.labels({ state: 'stale' }).set(v.stale);
    },
  });
  new Gauge({
    name: 'ocsp_cluster_applied_lag_changes',
    help: 'Status changes the live responder furthest behind has yet to apply (the change log head minus its applied seq).',
    registers: [registry],
    async collect() {
      const v = await current();
      if (v) this.set(v.lag);
    },
  });
}
