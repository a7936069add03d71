// The one metrics registry of a daemon (never prom-client's global), with Node's process metrics.
import { collectDefaultMetrics, Registry } from 'prom-client';

// prom-client's totals of nodejs_active_{handles,requests,resources} are gauges named like counters, which
// `promtool check metrics` rejects; the same figures by type remain (nodejs_active_handles, …).
const MISNAMED_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_GAUGES) registry.removeSingleMetric(name);
  return registry;
}
