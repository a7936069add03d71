// Lease metrics: whether this responder holds each lease, and how often that changed (a flapping lease shows here).
import { Counter, Gauge, Registry } from 'prom-client';
import type { LeaseObserver } from '../cluster/lease-keeper';

export class LeaseMetrics implements LeaseObserver {
  private readonly gauge: Gauge<'lease'>;
  private readonly changes: Counter<'lease' | 'change'>;
  private readonly state = new Map<string, boolean>();

  constructor(registry: Registry) {
    this.gauge = new Gauge({ name: 'ocsp_lease_held', help: '1 while this responder holds the lease (it runs the work done once per cluster), else 0.', labelNames: ['lease'], registers: [registry] });
    this.changes = new Counter({ name: 'ocsp_lease_changes_total', help: 'Times this responder gained or lost the lease.', labelNames: ['lease', 'change'], registers: [registry] });
  }

  held(name: string, held: boolean): void {
    const was = this.state.get(name);
    this.state.set(name, held);
    this.gauge.set({ lease: name }, held ? 1 : 0);
    if (was !== undefined && was !== held) this.changes.inc({ lease: name, change: held ? 'gained' : 'lost' });
  }
}
