// The OCSP listener's connections: open now, new ones by what became of them, idle ones closed to make room.
import { Counter, Gauge, Registry } from 'prom-client';
import type { ConnectionObserver, ConnectionOutcome } from '../http/connection-limits';

const OUTCOMES: readonly ConnectionOutcome[] = ['accepted', 'refused_per_client', 'refused_limit'];

export class ConnectionMetrics implements ConnectionObserver {
  private readonly outcomes: Record<ConnectionOutcome, Counter.Internal>;
  private readonly evictions: Counter;

  constructor(registry: Registry, open: () => number) {
    new Gauge({
      name: 'ocsp_connections_open',
      help: 'Connections open on the OCSP port (this process), as counted against server.maxConnections.',
      registers: [registry],
      collect() {
        this.set(open());
      },
    });
    const total = new Counter({
      name: 'ocsp_connections_total',
      help: 'New connections to the OCSP port: accepted, or closed at once past server.maxConnectionsPerClient (refused_per_client) or server.maxConnections with none idle (refused_limit).',
      labelNames: ['result'],
      registers: [registry],
    });
    // Every result shown from the start, at 0: a rate() over a series that appears with its first refusal misses it.
    this.outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, total.labels(o)])) as Record<ConnectionOutcome, Counter.Internal>;
    for (const o of OUTCOMES) this.outcomes[o].inc(0);
    this.evictions = new Counter({
      name: 'ocsp_connections_evicted_total',
      help: 'Idle connections to the OCSP port closed to make room for a new one at server.maxConnections.',
      registers: [registry],
    });
  }

  outcome(o: ConnectionOutcome): void {
    this.outcomes[o].inc();
  }

  evicted(): void {
    this.evictions.inc();
  }
}
