// Store outage metrics: whether the store answers now, how many outages there were, and how many store calls were
// refused at once because of one (each such call is a request answered tryLater, or a retry of background work).
import { Counter, Gauge, Registry } from 'prom-client';
import type { OutageObserver } from '../store/store-outage';

export class StoreOutageMetrics implements OutageObserver {
  private readonly outages: Counter;
  private readonly refusals: Counter;
  /** Whether the store answers now (set once the store is guarded). */
  up: () => boolean = () => true;

  constructor(registry: Registry) {
    const self = this;
    new Gauge({
      name: 'ocsp_store_up',
      help: '1 while the store (SQLite or PostgreSQL) answers; 0 during an outage, when requests that need it get tryLater.',
      registers: [registry],
      collect() {
        this.set(self.up() ? 1 : 0);
      },
    });
    this.outages = new Counter({
      name: 'ocsp_store_outages_total',
      help: 'Store outages: connection-level failures (refused, reset, shut down, unreachable, a damaged SQLite file).',
      registers: [registry],
    });
    this.refusals = new Counter({
      name: 'ocsp_store_refused_calls_total',
      help: 'Store calls refused at once during an outage instead of waiting for a connection.',
      registers: [registry],
    });
  }

  began(): void {
    this.outages.inc();
  }

  refused(): void {
    this.refusals.inc();
  }
}
