// The metric families config/grafana-dashboard.json reads, for tests that hold a live daemon's /metrics to it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './harness';
import { promqlMetricNames } from './promql-names';

export interface Panel {
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; refId?: string }[];
  panels?: Panel[];
}

/** Every panel, those inside collapsed rows too, without the rows themselves. */
export function dashboardPanels(dash: { panels: Panel[] }): Panel[] {
  return dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
}

/** Every metric family a panel's query reads (histograms by their name, without _bucket, _sum or _count). */
export function dashboardMetricFamilies(): Set<string> {
  const dash = JSON.parse(readFileSync(join(ROOT, 'config', 'grafana-dashboard.json'), 'utf8')) as { panels: Panel[] };
  const names = dashboardPanels(dash).flatMap((p) => (p.targets ?? []).flatMap((t) => promqlMetricNames(String(t.expr ?? ''))));
  return new Set(names.map((n) => n.replace(/_(bucket|sum|count)$/, '')));
}

/** The families a scrape declares (`# TYPE name type`) whose names start with `prefix`. */
export function scrapedFamilies(text: string, prefix: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!).filter((n) => n.startsWith(prefix));
}
