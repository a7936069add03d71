// Leases on PostgreSQL (lease-store.ts): the row is locked for each decision, so responders claiming together take
// turns, and a fenced write holds it FOR SHARE to its commit, so no takeover happens between its check and commit.
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
  const current = await readLease(c, claim.name, 'FOR UPDATE');
  const next = claimLease(current, claim, now());
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
 * In a write transaction: whether `fence` is the lease's current hold. The row stays locked FOR SHARE to commit: a
 * responder taking over (FOR UPDATE) waits until this write is in, and its own reads then see it.
 */
export async function fenceHoldsIn(c: PoolClient, fence: LeaseFence, now: () => Date): Promise<boolean> {
  const current = await readLease(c, fence.name, 'FOR SHARE');
  return fenceHolds(current, fence, now());
}

function fromRow(row: LeaseRow): Lease {
  return { name: row.name, holder: row.holder, epoch: Number(row.epoch), acquiredAt: row.acquired_at, expiresAt: row.expires_at };
}
