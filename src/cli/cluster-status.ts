// `ocsp-hsm cluster status`: the responders the store lists (heartbeat age, applied change, lag behind the change
// log's head, readiness, live or stale) and who holds each lease, as a table or as JSON.
import type { LeaseRow, ResponderRow } from '../store/responder-store';
import { livenessMs } from './cluster';
import { RecordsContext, withStore } from './records';

interface Listing {
  livenessWindowMs: number;
  head: number;
  responders: (Omit<ResponderRow, 'startedAt' | 'heartbeatAt' | 'ageMs'> & {
    startedAt: string;
    heartbeatAt: string;
    heartbeatAgeMs: number;
    lag: number;
    live: boolean;
  })[];
  leases: LeaseRow[];
}

export async function clusterStatus(ctx: RecordsContext, json: boolean): Promise<void> {
  const windowMs = livenessMs(ctx.loaded.config);
  const listing = await withStore(ctx, async (s): Promise<Listing> => {
    const [rows, head, leases] = await Promise.all([s.responders(), s.lastChange(), s.listLeases()]);
    return {
      livenessWindowMs: windowMs,
      head,
      responders: rows.map(({ startedAt, heartbeatAt, ageMs, ...r }) => ({
        ...r,
        startedAt: startedAt.toISOString(),
        heartbeatAt: heartbeatAt.toISOString(),
        heartbeatAgeMs: Math.round(ageMs),
        lag: Math.max(0, head - r.appliedSeq),
        live: ageMs <= windowMs,
      })),
      leases,
    };
  });
  if (json) return ctx.out(JSON.stringify(listing));
  for (const line of describe(listing)) ctx.out(line);
}

function describe(l: Listing): string[] {
  const live = l.responders.filter((r) => r.live).length;
  const out = [`responders: ${live} live, ${l.responders.length - live} stale (liveness window ${seconds(l.livenessWindowMs)}; change log head ${l.head})`];
  if (l.responders.length > 0) {
    out.push(
      ...table(
        ['ID', 'HOST', 'PID', 'WORKER', 'HEARTBEAT', 'APPLIED', 'LAG', 'READY', 'STATE'],
        l.responders.map((r) => [
          r.id,
          r.host,
          String(r.pid),
          r.worker === 0 ? '-' : String(r.worker),
          `${seconds(r.heartbeatAgeMs)} ago`,
          String(r.appliedSeq),
          String(r.lag),
          r.ready ? 'yes' : 'no',
          r.live ? 'live' : 'stale',
        ]),
      ),
    );
  }
  out.push(l.leases.length === 0 ? 'leases: none' : 'leases:');
  if (l.leases.length > 0) {
    const expiry = (ms: number) => (ms >= 0 ? `in ${seconds(ms)}` : `${seconds(-ms)} ago (expired)`);
    out.push(...table(['NAME', 'HOLDER', 'EPOCH', 'EXPIRES'], l.leases.map((x) => [x.name, x.holder || '-', String(x.epoch), expiry(x.expiresInMs)])));
  }
  return out;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)];
}

function seconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}
