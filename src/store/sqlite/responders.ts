// The responders table on SQLite (responder-store.ts): heartbeats stamped with the store's Clock (one host, one
// clock), written under the store's write lock like every other write.
import type Database from 'better-sqlite3';
import type { Clock } from '../../clock';
import type { LeaseRow, ResponderBeat, ResponderRow, ResponderStore } from '../responder-store';
import type { WriteLock } from './write-lock';

interface Row {
  id: string;
  host: string;
  pid: number;
  worker: number;
  started_at: number;
  heartbeat_at: number;
  applied_seq: number;
  ready: number;
}

export class SqliteResponders implements ResponderStore {
  private readonly upsert: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    private readonly clock: Clock,
    private readonly lock: WriteLock,
  ) {
    this.upsert = db.prepare(
      `INSERT INTO responders (id, host, pid, worker, started_at, heartbeat_at, applied_seq, ready)
       VALUES (@id, @host, @pid, @worker, @started_at, @heartbeat_at, @applied_seq, @ready)
       ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, worker = excluded.worker,
         started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, applied_seq = excluded.applied_seq,
         ready = excluded.ready`,
    );
  }

  async beat(b: ResponderBeat): Promise<void> {
    // Stamped once the lock is had: the row says when the responder was last heard of, not when it asked.
    await this.lock.write(() =>
      this.upsert.run({
        id: b.id,
        host: b.host,
        pid: b.pid,
        worker: b.worker,
        started_at: b.startedAt.getTime(),
        heartbeat_at: this.clock.now().getTime(),
        applied_seq: b.appliedSeq,
        ready: b.ready ? 1 : 0,
      }),
    );
  }

  async responders(): Promise<ResponderRow[]> {
    const now = this.clock.now().getTime();
    const rows = this.db.prepare('SELECT * FROM responders ORDER BY id').all() as Row[];
    return rows.map((r) => ({
      id: r.id,
      host: r.host,
      pid: r.pid,
      worker: r.worker,
      startedAt: new Date(r.started_at),
      heartbeatAt: new Date(r.heartbeat_at),
      ageMs: now - r.heartbeat_at,
      appliedSeq: r.applied_seq,
      ready: r.ready === 1,
    }));
  }

  async forgetResponder(id: string): Promise<void> {
    await this.lock.write(() => this.db.prepare('DELETE FROM responders WHERE id = ?').run(id));
  }

  async pruneResponders(ageMs: number): Promise<number> {
    const before = this.clock.now().getTime() - ageMs;
    return this.lock.write(() => this.db.prepare('DELETE FROM responders WHERE heartbeat_at < ?').run(before).changes);
  }

  /** The lease keeper's table, when this store has it (times as epoch milliseconds, like every SQLite time here). */
  async listLeases(): Promise<LeaseRow[]> {
    const exists = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'leases'").get();
    if (!exists) return [];
    const now = this.clock.now().getTime();
    const rows = this.db.prepare('SELECT name, holder, epoch, expires_at FROM leases ORDER BY name').all() as {
      name: string;
      holder: string | null;
      epoch: number;
      expires_at: number | string;
    }[];
    return rows.map((r) => ({ name: r.name, holder: r.holder ?? '', epoch: Number(r.epoch), expiresInMs: toMs(r.expires_at) - now }));
  }
}

function toMs(t: number | string): number {
  return typeof t === 'number' ? t : new Date(t).getTime();
}
