// The responders table on PostgreSQL (responder-store.ts): heartbeats stamped and aged by the database server's
// clock, so responders on hosts whose clocks disagree are compared on one scale.
import type { Pool } from 'pg';
import type { LeaseRow, ResponderBeat, ResponderRow } from '../responder-store';
import { iso } from './rows';

interface Row {
  id: string;
  host: string;
  pid: number;
  worker: number;
  started_at: Date;
  heartbeat_at: Date;
  /** bigint: a string from node-postgres. */
  applied_seq: string;
  ready: boolean;
  age_ms: number;
}

/** PostgreSQL's undefined_table: the lease keeper's migration is not in this database. */
const UNDEFINED_TABLE = '42P01';

export async function beat(pool: Pool, b: ResponderBeat): Promise<void> {
  await pool.query(
    `INSERT INTO responders (id, host, pid, worker, started_at, heartbeat_at, applied_seq, ready)
     VALUES ($1, $2, $3, $4, $5, now(), $6, $7)
     ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, worker = excluded.worker,
       started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, applied_seq = excluded.applied_seq,
       ready = excluded.ready`,
    [b.id, b.host, b.pid, b.worker, iso(b.startedAt), b.appliedSeq, b.ready],
  );
}

export async function responders(pool: Pool): Promise<ResponderRow[]> {
  const { rows } = await pool.query<Row>(
    `SELECT *, (extract(epoch FROM (now() - heartbeat_at)) * 1000)::float8 AS age_ms FROM responders ORDER BY id`,
  );
  return rows.map((r) => ({
    id: r.id,
    host: r.host,
    pid: r.pid,
    worker: r.worker,
    startedAt: r.started_at,
    heartbeatAt: r.heartbeat_at,
    ageMs: r.age_ms,
    appliedSeq: Number(r.applied_seq),
    ready: r.ready,
  }));
}

export async function forgetResponder(pool: Pool, id: string): Promise<void> {
  await pool.query('DELETE FROM responders WHERE id = $1', [id]);
}

export async function pruneResponders(pool: Pool, ageMs: number): Promise<number> {
  const { rowCount } = await pool.query(`DELETE FROM responders WHERE heartbeat_at < now() - $1 * interval '1 millisecond'`, [ageMs]);
  return rowCount ?? 0;
}

/** The lease keeper's table when this database has it; its expiry read as a time or as epoch milliseconds. */
export async function leases(pool: Pool): Promise<LeaseRow[]> {
  try {
    const { rows } = await pool.query<{ name: string; holder: string | null; epoch: string | number; expires_at: Date | string | number; db_now: Date }>(
      'SELECT name, holder, epoch, expires_at, now() AS db_now FROM leases ORDER BY name',
    );
    return rows.map((r) => ({ name: r.name, holder: r.holder ?? '', epoch: Number(r.epoch), expiresInMs: toMs(r.expires_at) - r.db_now.getTime() }));
  } catch (e) {
    if ((e as { code?: unknown }).code === UNDEFINED_TABLE) return [];
    throw e;
  }
}

function toMs(t: Date | string | number): number {
  if (t instanceof Date) return t.getTime();
  return typeof t === 'number' || /^\d+$/.test(t) ? Number(t) : new Date(t).getTime();
}
