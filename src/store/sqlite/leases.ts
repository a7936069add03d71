// Leases on SQLite (lease-store.ts): read, claimed, released and checked inside the store's write transactions.
import type Database from 'better-sqlite3';
import { claimLease, fenceHolds, Lease, LeaseClaim, LeaseFence } from '../lease-store';

interface LeaseRow {
  name: string;
  holder: string;
  epoch: number;
  acquired_at: number;
  expires_at: number;
}

export class SqliteLeases {
  private readonly select: Database.Statement<[string], LeaseRow>;
  private readonly upsert: Database.Statement;
  private readonly end: Database.Statement<[number, string, string, number, number]>;

  constructor(db: Database.Database) {
    this.select = db.prepare('SELECT * FROM leases WHERE name = ?');
    this.upsert = db.prepare(
      `INSERT OR REPLACE INTO leases (name, holder, epoch, acquired_at, expires_at) VALUES (@name, @holder, @epoch, @acquired_at, @expires_at)`,
    );
    this.end = db.prepare('UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND epoch = ? AND expires_at > ?');
  }

  read(name: string): Lease | undefined {
    const row = this.select.get(name);
    return row && fromRow(row);
  }

  /** Inside a write transaction: the claim decided and written against the row as it is. */
  claim(claim: LeaseClaim, now: Date): Lease {
    const current = this.read(claim.name);
    const next = claimLease(current, claim, now);
    if (!next) return current!;
    this.upsert.run({ name: next.name, holder: next.holder, epoch: next.epoch, acquired_at: next.acquiredAt.getTime(), expires_at: next.expiresAt.getTime() });
    return next;
  }

  release(fence: LeaseFence, now: Date): boolean {
    return this.end.run(now.getTime(), fence.name, fence.holder, fence.epoch, now.getTime()).changes > 0;
  }

  holds(fence: LeaseFence, now: Date): boolean {
    return fenceHolds(this.read(fence.name), fence, now);
  }
}

function fromRow(row: LeaseRow): Lease {
  return { name: row.name, holder: row.holder, epoch: row.epoch, acquiredAt: new Date(row.acquired_at), expiresAt: new Date(row.expires_at) };
}
