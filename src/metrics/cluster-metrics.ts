// /metrics of a daemon of several processes: the primary's series as they are (HSM, limiters, pre-signer, ...) and
// every serving process's series labelled worker="N". Labelled rather than summed: a restarted worker's counters
// start again from 0, which rate() reads as a reset of that one series, where a sum would seem to go backwards.
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';

export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export interface WorkerMetricsJson {
  worker: number;
  metrics: MetricsJson;
}

/** One registry holding every process's series; families shared by several processes are printed once. */
export function mergeMetrics(primary: MetricsJson, workers: readonly WorkerMetricsJson[]): Registry {
  // Each process's series differ by the worker label (the primary's have none), so "sum" adds nothing up: it
  // only gathers a family's series under one HELP and TYPE.
  const own = primary.map((m) => ({ ...m, aggregator: 'sum' as const }));
  const labelled = workers.map(({ worker, metrics }) =>
    metrics.map((m) => ({ ...m, aggregator: 'sum' as const, values: m.values.map((v) => ({ ...v, labels: { ...v.labels, worker: String(worker) } })) })),
  );
  return AggregatorRegistry.aggregate([own, ...labelled]);
}

/** The serving processes as the primary sees them. */
export class WorkerMetrics {
  private readonly restarts: Counter<'worker'>;

  constructor(registry: Registry, listening: () => number, configured: number) {
    this.restarts = new Counter({
      name: 'ocsp_worker_restarts_total',
      help: 'Serving processes started again after one exited unexpectedly, by worker slot.',
      labelNames: ['worker'],
      registers: [registry],
    });
    new Gauge({
      name: 'ocsp_workers',
      help: 'Serving processes: configured (server.workers) and listening now.',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        this.set({ state: 'configured' }, configured);
        this.set({ state: 'listening' }, listening());
      },
    });
  }

  restarted(worker: number): void {
    this.restarts.inc({ worker: String(worker) });
  }
}
