// The responders sharing a store, as it records them: one heartbeat row per process that answers OCSP requests, with
// the status change it has applied (README "Consistent revocation across responders"), and the leases of the
// scheduled work.

/** What a responder process records at each heartbeat. */
export interface ResponderBeat {
  /** ResponderIdentity.id; a serving process of several adds `#N`, its slot. */
  id: string;
  host: string;
  /** The daemon's process id (for a serving process: its primary's, so a daemon's rows group together). */
  pid: number;
  /** 0: a daemon of one process; 1..N: the serving process in that slot (server.workers). */
  worker: number;
  startedAt: Date;
  /** The change follower's position: every status change up to this seq is applied in this process. */
  appliedSeq: number;
  /** What this process's /readyz says. */
  ready: boolean;
}

export interface ResponderRow extends ResponderBeat {
  heartbeatAt: Date;
  /**
   * Milliseconds since heartbeatAt, by the store's clock: PostgreSQL's own (now()), so responders whose clocks
   * disagree are still compared on one scale; on SQLite (one host) the store's Clock.
   */
  ageMs: number;
}

/** A lease of scheduled work (the `leases` table), as recorded by whoever holds it. */
export interface LeaseRow {
  name: string;
  holder: string;
  epoch: number;
  /** Milliseconds until it expires by the store's clock (negative: expired). */
  expiresInMs: number;
}

export interface ResponderStore {
  /** Records the heartbeat (inserted or replaced), stamped with the store's clock. */
  beat(b: ResponderBeat): Promise<void>;
  /** Every responder recorded, in id order. */
  responders(): Promise<ResponderRow[]>;
  /** Removes a responder's row (a clean shutdown). */
  forgetResponder(id: string): Promise<void>;
  /** Removes the rows of responders not heard of for longer than `ageMs`; returns how many went. */
  pruneResponders(ageMs: number): Promise<number>;
  /** The leases recorded, in name order; none when the store has no `leases` table. */
  listLeases(): Promise<LeaseRow[]>;
}
