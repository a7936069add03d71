// Leases in the store: which responder does the work done once per cluster, and the rules both stores apply to them.

/** One lease row: `holder` may act for `name` until `expiresAt` (the writers' clocks: NTP-synchronised). */
export interface Lease {
  name: string;
  holder: string;
  /** Counts holds: every new hold (another holder, or the same one after its hold ended) takes the next number. */
  epoch: number;
  acquiredAt: Date;
  expiresAt: Date;
}

/** What a write made under a lease carries: it is stored only while this hold is still the lease's, unexpired. */
export interface LeaseFence {
  name: string;
  holder: string;
  epoch: number;
}

export interface LeaseClaim {
  name: string;
  holder: string;
  ttlMs: number;
  /** The epoch the claimant holds now, to renew it; without it (or when it is not the row's) a new hold begins. */
  heldEpoch?: number;
}

export interface LeaseStore {
  /**
   * Takes or renews a lease in one transaction: it succeeds when the lease is free, expired, or already the
   * claimant's. Returns the lease as it stands afterwards: the claimant's (held) or another responder's.
   */
  acquireLease(claim: LeaseClaim): Promise<Lease>;
  /** Ends the hold at once (clean shutdown: the next responder need not wait for expiry); false if it was not held. */
  releaseLease(fence: LeaseFence): Promise<boolean>;
  /** The lease row as it is (expired or not); undefined if nobody ever held it. */
  readLease(name: string): Promise<Lease | undefined>;
}

/**
 * The lease after `claim` at `now`, or undefined when another holder's unexpired lease stands. A renewal keeps the
 * epoch; anything else that succeeds is a new hold, with the next epoch, so a fence of an ended hold never passes
 * again (even the same holder's, whose work of the old hold may still be in flight).
 */
export function claimLease(current: Lease | undefined, claim: LeaseClaim, now: Date): Lease | undefined {
  const expiresAt = new Date(now.getTime() + claim.ttlMs);
  const live = current !== undefined && current.expiresAt.getTime() > now.getTime();
  if (live && current.holder === claim.holder && current.epoch === claim.heldEpoch) return { ...current, expiresAt };
  if (live && current.holder !== claim.holder) return undefined;
  return { name: claim.name, holder: claim.holder, epoch: (current?.epoch ?? 0) + 1, acquiredAt: now, expiresAt };
}

/** True when `fence` is the lease's current, unexpired hold: a write under it may be stored. */
export function fenceHolds(current: Lease | undefined, fence: LeaseFence, now: Date): boolean {
  return current !== undefined && current.holder === fence.holder && current.epoch === fence.epoch && current.expiresAt.getTime() > now.getTime();
}
