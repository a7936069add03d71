// The store on PostgreSQL (node-postgres pool): several responders share one database and hear of changes by NOTIFY.
import { createHash } from 'node:crypto';
import { Pool, type ClientConfig, type PoolClient } from 'pg';
import type { Clock } from '../../clock';
import type { HashName } from '../../ocsp/oids';
import type { ReasonName } from '../../ocsp/reasons';
import type { DueQuery, PutResponsesResult, ResponseKey, StatusChange, Store, StoredResponse } from '../response-store';
import type { StatusWrite } from '../status-rules';
import type { CertificateRecord, ImportResult, RevokeResult } from '../status-store';
import type { AppliedCrl, LastCrls } from '../crl-state';
import { ChangeListener } from './change-listener';
import { certificatesDue, countDue, indexedRead } from './due';
import { scrubPassword } from './connection-url';
import { applyCrlIn, lastCrls } from './crl-writes';
import type { Lease, LeaseClaim, LeaseFence } from '../lease-store';
import { claimIn, fenceHoldsIn, readLease, releaseIn } from './leases';
import { LookupBatcher } from '../lookup-batcher';
import { certificatesByKeys, CertificateLookup, ResponseLookup, responsesByKeys } from './lookups';
import { RESPONSE_LOCK_CLASS, migrate } from './migrations';
import * as rows from './rows';
import * as responderRows from './responders';
import type { LeaseRow, ResponderBeat, ResponderRow } from '../responder-store';
import { CHANGE_CHANNEL, putCertificatesIn, revokeIn } from './status-writes';
import { transaction } from './transaction';
import { insertResponsesIn } from './response-writes';

export interface PostgresStoreOptions {
  /** postgres:// or postgresql:// connection URL (node-postgres syntax, e.g. ?sslmode=require). */
  url: string;
  poolSize: number;
  clock: Clock;
  /** Connection trouble the store recovers from by itself (idle connection lost, listener reconnecting). */
  warn?: (message: string) => void;
  /** Bound on establishing a connection. */
  connectTimeoutMs?: number;
  /** How long a write waits for other writers' locks before it fails (store.writeTimeout); default 30 s. */
  writeTimeoutMs?: number;
}

/**
 * Lookup queries in flight at once per kind (responses, certificates): lookups arriving meanwhile wait and go out
 * together; the pool's other connections stay free for writes and the change feed.
 */
function lookupConcurrency(poolSize: number): number {
  return Math.max(1, Math.min(4, Math.floor(poolSize / 2)));
}

/** Most keys per lookup query. */
const MAX_BATCH = 500;

// BR 4.9.9's update deadline (compliance/cabf-timing.ts requiredUpdateMs) of each served response: the interval counts
// both ends (+1 s); under 16 hours, half of it before nextUpdate; else 8 hours before it, 4 days (96 hours, not
// calendar days) after thisUpdate.
const PAST_UPDATE_DEADLINES = `SELECT c.not_after, CASE
    WHEN r.next_update - r.this_update + interval '1 second' < interval '16 hours'
      THEN r.next_update - (r.next_update - r.this_update + interval '1 second') / 2
    ELSE least(r.next_update - interval '8 hours', r.this_update + interval '96 hours') END AS deadline
  FROM responses r JOIN certificates c ON c.ca = r.ca AND c.serial = r.serial
  WHERE r.ca = $1 AND r.signer = $2 AND r.produced_at = (SELECT max(produced_at) FROM responses l
    WHERE l.ca = r.ca AND l.serial = r.serial AND l.hash = r.hash)`;

/** How long close() waits for checked-out connections to come back. */
const CLOSE_WAIT_MS = 3_000;

export class PostgresStore implements Store {
  private listener: ChangeListener | undefined;
  private readonly watchers = new Set<() => void>();
  private closing: Promise<void> | undefined;
  readonly exact = false;
  private readonly responseLookups: LookupBatcher<ResponseLookup, StoredResponse | undefined>;
  private readonly certificateLookups: LookupBatcher<CertificateLookup, CertificateRecord | undefined>;

  private constructor(
    private readonly pool: Pool,
    private readonly clientConfig: ClientConfig,
    private readonly clock: Clock,
    private readonly warn: (message: string) => void,
    private readonly writeTimeoutMs: number,
    poolSize: number,
  ) {
    const batching = { maxInFlight: lookupConcurrency(poolSize), maxBatch: MAX_BATCH };
    this.responseLookups = new LookupBatcher((keys) => responsesByKeys(pool, keys), (k) => k.join('\0'), batching);
    this.certificateLookups = new LookupBatcher((keys) => certificatesByKeys(pool, keys), (k) => k.join('\0'), batching);
  }

  /** Lookup queries sent (getResponse and getCertificate) and the distinct keys they carried (tests). */
  get lookupStats(): { queries: number; keys: number } {
    const r = this.responseLookups.stats;
    const c = this.certificateLookups.stats;
    return { queries: r.queries + c.queries, keys: r.keys + c.keys };
  }

  /** A write transaction: waits for other writers' locks at most writeTimeoutMs (lock_timeout), then fails. */
  private writing<T>(fn: (c: PoolClient) => Promise<T>, o: { indexedPlans?: boolean } = {}): Promise<T> {
    return transaction(this.pool, fn, { lockTimeoutMs: this.writeTimeoutMs, ...o });
  }

  /** Connects and brings the schema up to date; rejects (with nothing left open) when either fails. */
  static async open(opts: PostgresStoreOptions): Promise<PostgresStore> {
    const clientConfig: ClientConfig = {
      connectionString: opts.url,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'ocsp-hsm',
    };
    const pool = new Pool({ ...clientConfig, max: opts.poolSize, idleTimeoutMillis: 30_000 });
    const warn = (m: string) => opts.warn?.(scrubPassword(opts.url, m));
    // An idle connection that dies is dropped by the pool; without this listener it would crash the process.
    pool.on('error', (e) => warn(`PostgreSQL idle connection lost: ${e.message}`));
    try {
      const client = await pool.connect();
      const ignore = () => undefined; // a dying connection's 'error' event: migrate() fails with it anyway
      client.on('error', ignore);
      try {
        await migrate(client);
      } finally {
        client.off('error', ignore);
        client.release();
      }
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw e;
    }
    return new PostgresStore(pool, clientConfig, opts.clock, warn, opts.writeTimeoutMs ?? 30_000, opts.poolSize);
  }

  getCertificate(ca: string, serial: string): Promise<CertificateRecord | undefined> {
    return this.certificateLookups.lookup([ca, serial]);
  }

  async listCertificates(ca: string, after: string, limit: number): Promise<CertificateRecord[]> {
    const { rows: found } = await this.pool.query<rows.CertificateRow>(
      'SELECT * FROM certificates WHERE ca = $1 AND serial > $2 ORDER BY serial LIMIT $3',
      [ca, after, limit],
    );
    return found.map(rows.fromCertificateRow);
  }

  async putCertificates(records: StatusWrite[]): Promise<ImportResult> {
    const now = this.clock.now();
    return this.writing((c) => putCertificatesIn(c, records, now));
  }

  async revoke(ca: string, serial: string, revokedAt: Date, reason: ReasonName): Promise<RevokeResult> {
    const now = this.clock.now();
    return this.writing((c) => revokeIn(c, ca, serial, revokedAt, reason, now));
  }

  lastCrls(ca: string): Promise<LastCrls> {
    return lastCrls(this.pool, ca);
  }

  async applyCrl(crl: AppliedCrl, records: StatusWrite[]): Promise<ImportResult> {
    const now = this.clock.now();
    return this.writing((c) => applyCrlIn(c, crl, records, now));
  }

  getResponse(ca: string, serial: string, hash: HashName): Promise<StoredResponse | undefined> {
    return this.responseLookups.lookup([ca, serial, hash]);
  }

  async listResponses(ca: string, after: ResponseKey | undefined, limit: number): Promise<StoredResponse[]> {
    // serial is COLLATE "C" by its column; hash is not, so it is ordered bytewise here, as SQLite orders it.
    const { rows: found } = await this.pool.query<rows.ResponseRow>(
      after
        ? `SELECT * FROM responses WHERE ca = $1 AND (serial, hash COLLATE "C", produced_at) > ($2, $3::text COLLATE "C", $4)
           ORDER BY serial, hash COLLATE "C", produced_at LIMIT $5`
        : 'SELECT * FROM responses WHERE ca = $1 ORDER BY serial, hash COLLATE "C", produced_at LIMIT $2',
      after ? [ca, after.serial, after.hash, rows.iso(after.producedAt), limit] : [ca, limit],
    );
    return found.map(rows.fromResponseRow);
  }

  async putResponses(responses: StoredResponse[], fence?: LeaseFence): Promise<PutResponsesResult> {
    if (responses.length === 0) return { stored: 0, skippedFinal: 0, stale: 0 };
    return this.writing(async (c) => {
      // Made under a lease another responder holds now: its holder does this work.
      if (fence && !(await fenceHoldsIn(c, fence, () => this.clock.now()))) return { stored: 0, skippedFinal: 0, stale: responses.length };
      // Two responders storing for the same certificate and hash take turns, so "no final one yet" stays true
      // until the insert. Locks are taken in one sorted statement: no deadlock between batches.
      await c.query('SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::integer[]) AS k', [RESPONSE_LOCK_CLASS, responseLockKeys(responses)]);
      // Compare-and-set: FOR SHARE waits for a status write in progress and then reads the version it committed;
      // held to commit, it keeps the next status write (FOR UPDATE) from deleting responses until these are in.
      const versions = await lockVersions(c, responses);
      const result: PutResponsesResult = { stored: 0, skippedFinal: 0, stale: 0 };
      const current = responses.filter((r) => versions.get(`${r.ca}\0${r.serial}`) === r.statusVersion);
      result.stale = responses.length - current.length;
      // One statement for the batch; one per response when a certificate and hash come twice (they must see each other).
      const keys = new Set(current.map((r) => `${r.ca}\0${r.serial}\0${r.hash}`));
      const parts = keys.size === current.length ? [current] : current.map((r) => [r]);
      for (const part of parts) {
        if (part.length === 0) continue;
        const stored = await insertResponsesIn(c, part);
        result.stored += stored;
        result.skippedFinal += part.length - stored;
      }
      return result;
    }, { indexedPlans: true });
  }

  async certificatesDue(q: DueQuery): Promise<CertificateRecord[]> {
    return (await certificatesDue(this.pool, q)).map(rows.fromCertificateRow);
  }

  countDue(q: Omit<DueQuery, 'after' | 'limit'>): Promise<number> {
    return countDue(this.pool, q);
  }

  async earliestNextUpdate(ca: string): Promise<Date | undefined> {
    const { rows: found } = await indexedRead<{ t: Date | null }>(
      this.pool,
      `SELECT min(next_update) AS t FROM responses r WHERE ca = $1 AND produced_at = (SELECT max(produced_at) FROM responses l
         WHERE l.ca = r.ca AND l.serial = r.serial AND l.hash = r.hash)`,
      [ca],
    );
    return found[0]!.t ?? undefined;
  }

  async countPastUpdateTime(ca: string, signer: string, at: Date): Promise<number> {
    const { rows: found } = await indexedRead<{ n: string }>(
      this.pool,
      `SELECT count(*) AS n FROM (${PAST_UPDATE_DEADLINES}) d WHERE deadline < $3 AND (not_after IS NULL OR not_after > deadline)`,
      [ca, signer, at],
    );
    return Number(found[0]!.n);
  }

  async deleteSuperseded(): Promise<number> {
    const { rowCount } = await indexedRead(
      this.pool,
      `DELETE FROM responses r WHERE produced_at < (SELECT max(produced_at) FROM responses l
         WHERE l.ca = r.ca AND l.serial = r.serial AND l.hash = r.hash)`,
      [],
    );
    return rowCount ?? 0;
  }

  async lastChange(): Promise<number> {
    const { rows: found } = await this.pool.query<{ seq: string }>('SELECT coalesce(max(seq), 0) AS seq FROM status_changes');
    return Number(found[0]!.seq);
  }

  async changesSince(seq: number, limit: number): Promise<StatusChange[]> {
    const { rows: found } = await this.pool.query<rows.ChangeRow>(
      'SELECT seq, ca, serial, kind, at FROM status_changes WHERE seq > $1 ORDER BY seq LIMIT $2',
      [seq, limit],
    );
    return found.map(rows.fromChangeRow);
  }

  /** Always false: PostgreSQL pushes changes (NOTIFY) to `watch` listeners instead of being asked. */
  mayHaveChanged(): boolean {
    return false;
  }

  /**
   * The listener is called on every committed status write by any responder on this database (this one's
   * included), and once whenever listening (re)starts, since changes made meanwhile went unannounced.
   */
  watch(listener: () => void): () => void {
    if (this.closing) return () => undefined;
    this.watchers.add(listener);
    this.listener ??= new ChangeListener({
      client: this.clientConfig,
      channel: CHANGE_CHANNEL,
      onChange: () => {
        for (const w of [...this.watchers]) w();
      },
      warn: this.warn,
    });
    return () => {
      this.watchers.delete(listener);
      if (this.watchers.size === 0 && this.listener) {
        void this.listener.stop();
        this.listener = undefined;
      }
    };
  }

  async pruneChanges(before: Date): Promise<number> {
    // Keep the newest record, as SqliteStore does, so lastChange() never goes back.
    const { rowCount } = await this.pool.query(
      'DELETE FROM status_changes WHERE at < $1 AND seq < (SELECT max(seq) FROM status_changes)',
      [rows.iso(before)],
    );
    return rowCount ?? 0;
  }

  acquireLease(claim: LeaseClaim): Promise<Lease> {
    return this.writing((c) => claimIn(c, claim, () => this.clock.now()));
  }

  releaseLease(fence: LeaseFence): Promise<boolean> {
    return this.writing((c) => releaseIn(c, fence, this.clock.now()));
  }

  readLease(name: string): Promise<Lease | undefined> {
    return readLease(this.pool, name);
  }

  beat(b: ResponderBeat): Promise<void> {
    return responderRows.beat(this.pool, b);
  }

  responders(): Promise<ResponderRow[]> {
    return responderRows.responders(this.pool);
  }

  forgetResponder(id: string): Promise<void> {
    return responderRows.forgetResponder(this.pool, id);
  }

  pruneResponders(ageMs: number): Promise<number> {
    return responderRows.pruneResponders(this.pool, ageMs);
  }

  listLeases(): Promise<LeaseRow[]> {
    return responderRows.leases(this.pool);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.watchers.clear();
      await this.listener?.stop();
      this.listener = undefined;
      // pool.end() waits for every checked-out connection; one never handed back would hold a shutdown for ever
      // (seen in the PostgreSQL revocation race, cause not yet found): bounded, and the count said.
      const ended = this.pool.end();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), CLOSE_WAIT_MS)));
      if ((await Promise.race([ended, late])) === 'late') {
        this.warn(`PostgreSQL store closed with ${this.pool.totalCount - this.pool.idleCount} connection(s) still checked out after ${CLOSE_WAIT_MS} ms`);
      }
      clearTimeout(timer);
    })();
    return this.closing;
  }
}

/** The current version of each certificate the responses are for, its row locked FOR SHARE (in key order). */
async function lockVersions(c: PoolClient, responses: StoredResponse[]): Promise<Map<string, number>> {
  const keys = [...new Map(responses.map((r) => [`${r.ca}\0${r.serial}`, [r.ca, r.serial]])).values()];
  const { rows: found } = await c.query<{ ca: string; serial: string; status_seq: string }>(
    `SELECT c.ca, c.serial, c.status_seq FROM certificates c
       JOIN unnest($1::text[], $2::text[]) AS k(ca, serial) ON c.ca = k.ca AND c.serial = k.serial
     ORDER BY c.ca, c.serial FOR SHARE OF c`,
    [keys.map((k) => k[0]), keys.map((k) => k[1])],
  );
  return new Map(found.map((r) => [`${r.ca}\0${r.serial}`, Number(r.status_seq)]));
}

function responseLockKeys(responses: StoredResponse[]): number[] {
  const keys = responses.map((r) => createHash('sha256').update(`${r.ca}\0${r.serial}\0${r.hash}`).digest().readInt32BE(0));
  return [...new Set(keys)].sort((a, b) => a - b);
}

