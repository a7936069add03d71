// The store on an embedded SQLite file (better-sqlite3): the default, zero-administration backend.
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Clock } from '../../clock';
import { createFileWithMode, makePrivateDir, PRIVATE_FILE } from '../../file-modes';
import type { HashName } from '../../ocsp/oids';
import type { ReasonName } from '../../ocsp/reasons';
import { AppliedCrl, crlOrderProblem, LastCrls, StaleCrlError, urlsFromText, urlsToText } from '../crl-state';
import type { ChangeKind, DueQuery, PutResponsesResult, ResponseKey, ServableResponse, StatusChange, Store, StoredResponse } from '../response-store';
import { count, emptyResult, mergeRecord, revocation, StatusWrite } from '../status-rules';
import type { CertificateRecord, ImportResult, RevokeResult } from '../status-store';
import { WriteLock, WriteLockOptions } from './write-lock';
import { BackgroundReader } from './background-reader';
import { SQLITE_MIGRATIONS } from './migrations';
import type { Lease, LeaseClaim, LeaseFence } from '../lease-store';
import { SqliteLeases } from './leases';
import { SqliteResponders } from './responders';
import type { LeaseRow, ResponderBeat, ResponderRow } from '../responder-store';

interface Row {
  ca: string;
  serial: string;
  status: 'good' | 'revoked';
  revoked_at: number | null;
  reason: string | null;
  not_after: number | null;
  profile: string | null;
  status_seq: number;
}

interface CrlRow {
  ca: string;
  kind: 'full' | 'delta';
  crl_number: string | null;
  base_crl_number: string | null;
  this_update: number;
  next_update: number | null;
  freshest_urls: string;
}

interface ResponseRow {
  ca: string;
  serial: string;
  hash: string;
  produced_at: number;
  this_update: number;
  next_update: number;
  final: number;
  cert_id: Buffer;
  der: Buffer;
  profile: string | null;
  status_seq: number;
  signer: string;
}

// getResponseNow's columns, in ServableRow's order.
const SERVABLE_COLUMNS = 'der, produced_at, this_update, next_update, profile, status_seq, signer';
type ServableRow = [der: Buffer, producedAt: number, thisUpdate: number, nextUpdate: number, profile: string | null, statusSeq: number, signer: string];

// A certificate is due unless its latest usable response is fresh enough (or final, which is never refreshed).
// A response by another signer (a rotation) never counts.
const DUE_WHERE = `c.ca = @ca AND (@not_expired IS NULL OR c.not_after IS NULL OR c.not_after >= @not_expired)
  AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.ca = c.ca AND r.serial = c.serial AND r.hash = @hash AND r.signer = @signer
    AND (r.final = 1 OR (@need_final = 0 AND r.this_update > @refresh_before
      AND r.this_update + @refresh_after * (r.next_update - r.this_update) > @refresh_at)))`;

// BR 4.9.9's update deadline (compliance/cabf-timing.ts requiredUpdateMs) of each served response, in ms: the interval
// counts both ends (+1 s); under 16 hours, half of it before nextUpdate; else 8 hours before it, 4 days after thisUpdate.
const PAST_UPDATE_DEADLINES = `SELECT c.not_after, CASE
    WHEN r.next_update - r.this_update + 1000 < 57600000 THEN r.next_update - (r.next_update - r.this_update + 1000) / 2.0
    ELSE min(r.next_update - 28800000, r.this_update + 345600000) END AS deadline
  FROM responses r JOIN certificates c ON c.ca = r.ca AND c.serial = r.serial
  WHERE r.ca = @ca AND r.signer = @signer AND r.produced_at = (SELECT max(produced_at) FROM responses l
    WHERE l.ca = r.ca AND l.serial = r.serial AND l.hash = r.hash)`;

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly selectOne: Database.Statement<[string, string], Row>;
  private readonly upsert: Database.Statement;
  private readonly insertChange: Database.Statement;
  private readonly deleteResponsesOf: Database.Statement;
  private readonly selectResponse: Database.Statement<[string, string, string], ResponseRow>;
  private readonly selectServable: Database.Statement<[string, string, string], ServableRow>;
  private readonly insertResponse: Database.Statement;
  private readonly deleteOtherSigners: Database.Statement<[string, string, string, string]>;
  private readonly dataVersion: Database.Statement<[], number>;
  private lastDataVersion: number;
  private readonly watchers = new Set<() => void>();
  private watchTimer: NodeJS.Timeout | undefined;
  private readonly reader: BackgroundReader | undefined;
  private readonly selectVersion: Database.Statement<[string, string], number>;
  private readonly lock: WriteLock;
  private readonly leases: SqliteLeases;
  private readonly responderRows: SqliteResponders;
  readonly exact = true;

  constructor(
    file: string,
    private readonly clock: Clock,
    lockOptions: Partial<WriteLockOptions> = {},
  ) {
    if (file !== ':memory:') {
      makePrivateDir(dirname(file));
      // SQLite makes a new database 0644 and gives its -wal and -shm the database's mode: 0600 from the start.
      createFileWithMode(file, PRIVATE_FILE);
    }
    // An in-memory database is private to its connection: it is read here, on the caller's thread.
    this.reader = file === ':memory:' ? undefined : new BackgroundReader(file);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // Reads wait this long for a lock (rare in WAL mode); writes never wait inside SQLite, see WriteLock.
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    this.lock = new WriteLock(this.db, clock, lockOptions);
    this.responderRows = new SqliteResponders(this.db, clock, this.lock);
    this.selectOne = this.db.prepare('SELECT * FROM certificates WHERE ca = ? AND serial = ?');
    this.upsert = this.db.prepare(
      `INSERT INTO certificates (ca, serial, status, revoked_at, reason, not_after, profile, updated_at, status_seq)
       VALUES (@ca, @serial, @status, @revoked_at, @reason, @not_after, @profile, @updated_at, @status_seq)
       ON CONFLICT (ca, serial) DO UPDATE SET status = excluded.status, revoked_at = excluded.revoked_at,
         reason = excluded.reason, not_after = excluded.not_after, profile = excluded.profile,
         updated_at = excluded.updated_at, status_seq = excluded.status_seq`,
    );
    this.insertChange = this.db.prepare('INSERT INTO status_changes (ca, serial, kind, at) VALUES (?, ?, ?, ?)');
    this.deleteResponsesOf = this.db.prepare('DELETE FROM responses WHERE ca = ? AND serial = ?');
    this.selectResponse = this.db.prepare(
      'SELECT * FROM responses WHERE ca = ? AND serial = ? AND hash = ? ORDER BY produced_at DESC LIMIT 1',
    );
    // Only what an answer needs, as an array: the CertID's Buffer and a 12-key object per row cost more than the query.
    this.selectServable = this.db
      .prepare(`SELECT ${SERVABLE_COLUMNS} FROM responses WHERE ca = ? AND serial = ? AND hash = ? ORDER BY produced_at DESC LIMIT 1`)
      .raw() as unknown as Database.Statement<[string, string, string], ServableRow>;
    // A final response blocks anything newer for the same certificate and hash (seed: "no new responses").
    this.selectVersion = this.db.prepare('SELECT status_seq FROM certificates WHERE ca = ? AND serial = ?').pluck() as Database.Statement<[string, string], number>;
    this.insertResponse = this.db.prepare(
      `INSERT OR REPLACE INTO responses (ca, serial, hash, produced_at, this_update, next_update, final, cert_id, der, profile, status_seq, signer)
       SELECT @ca, @serial, @hash, @produced_at, @this_update, @next_update, @final, @cert_id, @der, @profile, @status_seq, @signer
       WHERE NOT EXISTS (SELECT 1 FROM responses WHERE ca = @ca AND serial = @serial AND hash = @hash AND final = 1 AND signer = @signer)`,
    );
    this.deleteOtherSigners = this.db.prepare('DELETE FROM responses WHERE ca = ? AND serial = ? AND hash = ? AND signer <> ?');
    this.dataVersion = this.db.prepare('PRAGMA data_version').pluck() as Database.Statement<[], number>;
    this.lastDataVersion = this.dataVersion.get()!;
    this.leases = new SqliteLeases(this.db);
  }

  async getCertificate(ca: string, serial: string): Promise<CertificateRecord | undefined> {
    const row = this.selectOne.get(ca, serial);
    return row && fromRow(row);
  }

  async listCertificates(ca: string, after: string, limit: number): Promise<CertificateRecord[]> {
    const rows = this.db.prepare('SELECT * FROM certificates WHERE ca = ? AND serial > ? ORDER BY serial LIMIT ?').all(ca, after, limit) as Row[];
    return rows.map(fromRow);
  }

  async putCertificates(records: StatusWrite[]): Promise<ImportResult> {
    return this.lock.write(() => this.merge(records, this.clock.now().getTime()));
  }

  private merge(records: StatusWrite[], now: number): ImportResult {
    const result = emptyResult();
    for (const rec of records) count(result, this.mergeOne(rec, now));
    return result;
  }

  private mergeOne(rec: StatusWrite, now: number) {
    const existing = this.selectOne.get(rec.ca, rec.serial);
    const m = mergeRecord(existing && fromRow(existing), rec);
    if (m.record) this.write(m.record, m.change, m.statusChanged, now);
    return m;
  }

  async lastCrls(ca: string): Promise<LastCrls> {
    return this.lastCrlsSync(ca);
  }

  async applyCrl(crl: AppliedCrl, records: StatusWrite[]): Promise<ImportResult> {
    const now = this.clock.now().getTime();
    // The order check and the writes see no other writer in between.
    return this.lock.write(() => {
        const problem = crlOrderProblem(this.lastCrlsSync(crl.ca), crl);
        if (problem) throw new StaleCrlError(problem);
        const result = this.merge(records, now);
        this.db
          .prepare(
            `INSERT OR REPLACE INTO crls (ca, kind, crl_number, base_crl_number, this_update, next_update, freshest_urls, applied_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(crl.ca, crl.kind, crl.crlNumber?.toString() ?? null, crl.baseCrlNumber?.toString() ?? null, crl.thisUpdate.getTime(),
            crl.nextUpdate?.getTime() ?? null, urlsToText(crl.freshestCrlUrls), now);
        return result;
      });
  }

  private lastCrlsSync(ca: string): LastCrls {
    const rows = this.db.prepare('SELECT * FROM crls WHERE ca = ?').all(ca) as CrlRow[];
    return Object.fromEntries(rows.map((r) => [r.kind, fromCrlRow(r)]));
  }

  async revoke(ca: string, serial: string, revokedAt: Date, reason: ReasonName): Promise<RevokeResult> {
    return this.lock.write(() => {
      const m = this.mergeOne(revocation(ca, serial, revokedAt, reason), this.clock.now().getTime());
      const row = this.selectOne.get(ca, serial);
      return { created: m.outcome === 'inserted', outcome: m.outcome, record: row && fromRow(row) };
    });
  }

  // The change is recorded first: its seq becomes the certificate's version.
  private write(rec: CertificateRecord, change: ChangeKind, statusChanged: boolean, now: number): void {
    const seq = Number(this.insertChange.run(rec.ca, rec.serial, change, now).lastInsertRowid);
    this.upsert.run({ ...toRow(rec), updated_at: now, status_seq: seq });
    if (statusChanged) this.deleteResponsesOf.run(rec.ca, rec.serial);
  }

  async getResponse(ca: string, serial: string, hash: HashName): Promise<StoredResponse | undefined> {
    const row = this.selectResponse.get(ca, serial, hash);
    return row && fromResponseRow(row);
  }

  getResponseNow(ca: string, serial: string, hash: HashName): ServableResponse | undefined {
    const row = this.selectServable.get(ca, serial, hash);
    return row && fromServableRow(ca, serial, hash, row);
  }

  async listResponses(ca: string, after: ResponseKey | undefined, limit: number): Promise<StoredResponse[]> {
    // Row values compare left to right, as the primary key orders (ca, serial, hash, produced_at).
    const rows = after
      ? this.db
          .prepare('SELECT * FROM responses WHERE ca = ? AND (serial, hash, produced_at) > (?, ?, ?) ORDER BY serial, hash, produced_at LIMIT ?')
          .all(ca, after.serial, after.hash, after.producedAt.getTime(), limit)
      : this.db.prepare('SELECT * FROM responses WHERE ca = ? ORDER BY serial, hash, produced_at LIMIT ?').all(ca, limit);
    return (rows as ResponseRow[]).map(fromResponseRow);
  }

  async putResponses(responses: StoredResponse[], fence?: LeaseFence): Promise<PutResponsesResult> {
    return this.lock.write(() => {
      const result: PutResponsesResult = { stored: 0, skippedFinal: 0, stale: 0 };
      // Made under a lease another responder holds now: its holder does this work (the write lock keeps it so).
      if (fence && !this.leases.holds(fence, this.clock.now())) return { ...result, stale: responses.length };
      for (const r of responses) {
        // Compare-and-set: the status it was signed from must still be the certificate's latest.
        if (this.selectVersion.get(r.ca, r.serial) !== r.statusVersion) result.stale++;
        else if (this.insertResponse.run(toResponseRow(r)).changes > 0) {
          result.stored++;
          // A retired signer's responses (a rotation) go once the current signer's is in: none is served again.
          this.deleteOtherSigners.run(r.ca, r.serial, r.hash, r.signer);
        } else result.skippedFinal++;
      }
      return result;
    });
  }

  async certificatesDue(q: DueQuery): Promise<CertificateRecord[]> {
    const rows = this.db
      .prepare(`SELECT c.* FROM certificates c WHERE ${DUE_WHERE} AND c.serial > @after ORDER BY c.serial LIMIT @limit`)
      .all({ ...dueParams(q), after: q.after, limit: q.limit }) as Row[];
    return rows.map(fromRow);
  }

  // Both read every certificate or response of a CA: off the event loop when the store is a file.
  async countDue(q: Omit<DueQuery, 'after' | 'limit'>): Promise<number> {
    return (await this.aggregate(`SELECT count(*) FROM certificates c WHERE ${DUE_WHERE}`, dueParams(q))) as number;
  }

  async earliestNextUpdate(ca: string): Promise<Date | undefined> {
    const ms = (await this.aggregate(
      `SELECT min(next_update) FROM responses r WHERE ca = @ca AND produced_at = (SELECT max(produced_at) FROM responses l
         WHERE l.ca = r.ca AND l.serial = r.serial AND l.hash = r.hash)`,
      { ca },
    )) as number | null;
    return ms === null ? undefined : new Date(ms);
  }

  async countPastUpdateTime(ca: string, signer: string, at: Date): Promise<number> {
    return (await this.aggregate(`SELECT count(*) FROM (${PAST_UPDATE_DEADLINES}) WHERE deadline < @at AND (not_after IS NULL OR not_after > deadline)`, {
      ca, signer, at: at.getTime(),
    })) as number;
  }

  private aggregate(sql: string, params: Record<string, unknown>): Promise<unknown> {
    if (this.reader) return this.reader.value(sql, params);
    return Promise.resolve(this.db.prepare(sql).pluck().get(params));
  }

  async deleteSuperseded(): Promise<number> {
    return this.lock.write(
      () =>
        this.db
          .prepare(
            `DELETE FROM responses WHERE produced_at < (SELECT max(produced_at) FROM responses l
               WHERE l.ca = responses.ca AND l.serial = responses.serial AND l.hash = responses.hash)`,
          )
          .run().changes,
    );
  }

  async lastChange(): Promise<number> {
    return (this.db.prepare('SELECT coalesce(max(seq), 0) FROM status_changes').pluck().get() as number) ?? 0;
  }

  async changesSince(seq: number, limit: number): Promise<StatusChange[]> {
    const rows = this.db.prepare('SELECT seq, ca, serial, kind, at FROM status_changes WHERE seq > ? ORDER BY seq LIMIT ?').all(seq, limit) as (Omit<StatusChange, 'at'> & { at: number })[];
    return rows.map((r) => ({ ...r, at: new Date(r.at) }));
  }

  // data_version changes when another connection commits; our own writes do not change it.
  mayHaveChanged(): boolean {
    if (!this.db.open) return false;
    const v = this.dataVersion.get()!;
    if (v === this.lastDataVersion) return false;
    this.lastDataVersion = v;
    return true;
  }

  watch(listener: () => void): () => void {
    this.watchers.add(listener);
    // Nobody tells SQLite readers about other processes' commits: look four times a second.
    this.watchTimer ??= setInterval(() => {
      if (this.mayHaveChanged()) for (const w of this.watchers) w();
    }, 250).unref();
    return () => {
      this.watchers.delete(listener);
      if (this.watchers.size === 0) {
        clearInterval(this.watchTimer);
        this.watchTimer = undefined;
      }
    };
  }

  async pruneChanges(before: Date): Promise<number> {
    // Keep the newest record so the sequence never restarts (AUTOINCREMENT would not reuse numbers anyway).
    return this.lock.write(
      () => this.db.prepare('DELETE FROM status_changes WHERE at < ? AND seq < (SELECT max(seq) FROM status_changes)').run(before.getTime()).changes,
    );
  }

  async acquireLease(claim: LeaseClaim): Promise<Lease> {
    return this.lock.write(() => this.leases.claim(claim, this.clock.now()));
  }

  async releaseLease(fence: LeaseFence): Promise<boolean> {
    return this.lock.write(() => this.leases.release(fence, this.clock.now()));
  }

  async readLease(name: string): Promise<Lease | undefined> {
    return this.leases.read(name);
  }

  beat(b: ResponderBeat): Promise<void> {
    return this.responderRows.beat(b);
  }

  responders(): Promise<ResponderRow[]> {
    return this.responderRows.responders();
  }

  forgetResponder(id: string): Promise<void> {
    return this.responderRows.forgetResponder(id);
  }

  pruneResponders(ageMs: number): Promise<number> {
    return this.responderRows.pruneResponders(ageMs);
  }

  listLeases(): Promise<LeaseRow[]> {
    return this.responderRows.listLeases();
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    clearInterval(this.watchTimer);
    this.watchers.clear();
    await this.reader?.close();
    if (this.db.open) this.db.close();
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < SQLITE_MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(SQLITE_MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

function dueParams(q: Omit<DueQuery, 'after' | 'limit'>) {
  return {
    ca: q.ca,
    hash: q.hash,
    refresh_before: q.refreshBefore.getTime(),
    refresh_after: q.refreshAfter,
    refresh_at: q.refreshAt.getTime(),
    need_final: q.needFinal ? 1 : 0,
    signer: q.signer,
    not_expired: q.notExpiredAt?.getTime() ?? null,
  };
}

function toRow(r: CertificateRecord): Omit<Row, 'status_seq'> {
  return {
    ca: r.ca,
    serial: r.serial,
    status: r.status,
    revoked_at: r.status === 'revoked' ? (r.revokedAt?.getTime() ?? null) : null,
    reason: r.status === 'revoked' ? (r.reason ?? null) : null,
    not_after: r.notAfter?.getTime() ?? null,
    profile: r.profile ?? null,
  };
}

function fromRow(row: Row): CertificateRecord {
  const rec: CertificateRecord = { ca: row.ca, serial: row.serial, status: row.status };
  if (row.revoked_at !== null) rec.revokedAt = new Date(row.revoked_at);
  if (row.reason !== null) rec.reason = row.reason as ReasonName;
  if (row.not_after !== null) rec.notAfter = new Date(row.not_after);
  if (row.profile !== null) rec.profile = row.profile;
  rec.version = row.status_seq;
  return rec;
}

function fromCrlRow(row: CrlRow): AppliedCrl {
  return {
    ca: row.ca,
    kind: row.kind,
    ...(row.crl_number !== null ? { crlNumber: BigInt(row.crl_number) } : {}),
    ...(row.base_crl_number !== null ? { baseCrlNumber: BigInt(row.base_crl_number) } : {}),
    thisUpdate: new Date(row.this_update),
    ...(row.next_update !== null ? { nextUpdate: new Date(row.next_update) } : {}),
    freshestCrlUrls: urlsFromText(row.freshest_urls),
  };
}

function toResponseRow(r: StoredResponse): ResponseRow {
  return {
    ca: r.ca,
    serial: r.serial,
    hash: r.hash,
    produced_at: r.producedAt.getTime(),
    this_update: r.thisUpdate.getTime(),
    next_update: r.nextUpdate.getTime(),
    final: r.final ? 1 : 0,
    cert_id: r.certIdDer,
    der: r.der,
    profile: r.profile ?? null,
    status_seq: r.statusVersion,
    signer: r.signer,
  };
}

function fromResponseRow(row: ResponseRow): StoredResponse {
  return {
    ca: row.ca,
    serial: row.serial,
    hash: row.hash as HashName,
    certIdDer: row.cert_id,
    der: row.der,
    producedAt: new Date(row.produced_at),
    thisUpdate: new Date(row.this_update),
    nextUpdate: new Date(row.next_update),
    final: row.final === 1,
    ...(row.profile !== null ? { profile: row.profile } : {}),
    statusVersion: row.status_seq,
    signer: row.signer,
  };
}

function fromServableRow(ca: string, serial: string, hash: HashName, row: ServableRow): ServableResponse {
  const [der, producedAt, thisUpdate, nextUpdate, profile, statusVersion, signer] = row;
  const r: ServableResponse = {
    ca, serial, hash, der, producedAt: new Date(producedAt), thisUpdate: new Date(thisUpdate), nextUpdate: new Date(nextUpdate), statusVersion, signer,
  };
  if (profile !== null) r.profile = profile;
  return r;
}
