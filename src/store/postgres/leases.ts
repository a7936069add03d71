// Leases on PostgreSQL (lease-store.ts). Row locks, weakest first: a fenced write holds the row FOR KEY SHARE to its
// commit; a renewal or release updates it (FOR NO KEY UPDATE, which fenced writes do not block); only a new hold
// takes it FOR UPDATE, so it waits for writes fenced by the old hold to commit, and then reads them. A claimant that
// finds another's live lease takes no lock at all: standbys claiming every few seconds never delay the holder.
import type { Pool, PoolClient } from 'pg';
import { claimLease, fenceHolds, Lease, LeaseClaim, LeaseFence } from '../lease-store';
import { iso } from './rows';

interface LeaseRow {
  name: string;
  holder: string;
  /** bigint: a string from node-postgres. */
  epoch: string;
  acquired_at: Date;
  expires_at: Date;
}

export async function readLease(db: Pool | PoolClient, name: string, lock = ''): Promise<Lease | undefined> {
  const { rows } = await db.query<LeaseRow>(`SELECT * FROM leases WHERE name = $1 ${lock}`, [name]);
  return rows[0] && fromRow(rows[0]);
}

/** In a write transaction: the claim decided against the locked row, at the time the lock was had, and written. */
export async function claimIn(c: PoolClient, claim: LeaseClaim, now: () => Date): Promise<Lease> {
  const seen = await readLease(c, claim.name);
  if (seen && !claimLease(seen, claim, now())) return seen;
  // Claimants take turns here; the holder's fenced writes go on meanwhile.
  let current = await readLease(c, claim.name, 'FOR NO KEY UPDATE');
  let next = claimLease(current, claim, now());
  if (next && current && next.epoch !== current.epoch) {
    // A new hold: what the old one is storing commits first (FOR UPDATE waits for FOR KEY SHARE).
    current = await readLease(c, claim.name, 'FOR UPDATE');
    next = claimLease(current, claim, now());
  }
  if (!next) return current!;
  const params = [next.name, next.holder, next.epoch, iso(next.acquiredAt), iso(next.expiresAt)];
  if (current) {
    await c.query('UPDATE leases SET holder = $2, epoch = $3, acquired_at = $4, expires_at = $5 WHERE name = $1', params);
    return next;
  }
  // No row to lock yet: of responders inserting together one wins, the others read its row (committed by then).
  const { rowCount } = await c.query('INSERT INTO leases (name, holder, epoch, acquired_at, expires_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING', params);
  return rowCount ? next : (await readLease(c, claim.name))!;
}

export async function releaseIn(c: PoolClient, fence: LeaseFence, now: Date): Promise<boolean> {
  const { rowCount } = await c.query('UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3 AND epoch = $4 AND expires_at > $1', [
    iso(now),
    fence.name,
    fence.holder,
    fence.epoch,
  ]);
  return (rowCount ?? 0) > 0;
}

/**
 * In a write transaction: whether `fence` is the lease's current hold. The row stays locked FOR KEY SHARE to commit:
 * a responder taking over (FOR UPDATE) waits until this write is in, and its own reads then see it; the holder's
 * renewals (FOR NO KEY UPDATE) do not wait for it.
 */
export async function fenceHoldsIn(c: PoolClient, fence: LeaseFence, now: () => Date): Promise<boolean> {
  const current = await readLease(c, fence.name, 'FOR KEY SHARE');
  return fenceHolds(current, fence, now());
}

function fromRow(row: LeaseRow): Lease {
  return { name: row.name, holder: row.holder, epoch: Number(row.epoch), acquiredAt: row.acquired_at, expiresAt: row.expires_at };
}
