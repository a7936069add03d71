// SQLite schema migrations, applied in order at startup; PRAGMA user_version records the last one applied.

export const SQLITE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE certificates (
     ca          TEXT    NOT NULL,
     serial      TEXT    NOT NULL,
     status      TEXT    NOT NULL CHECK (status IN ('good', 'revoked')),
     revoked_at  INTEGER,
     reason      TEXT,
     not_after   INTEGER,
     profile     TEXT,
     updated_at  INTEGER NOT NULL,
     PRIMARY KEY (ca, serial)
   ) WITHOUT ROWID`,
  // Pre-produced responses: several per certificate and hash until cleanup keeps only the latest producedAt.
  `CREATE TABLE responses (
     ca           TEXT    NOT NULL,
     serial       TEXT    NOT NULL,
     hash         TEXT    NOT NULL,
     produced_at  INTEGER NOT NULL,
     this_update  INTEGER NOT NULL,
     next_update  INTEGER NOT NULL,
     final        INTEGER NOT NULL DEFAULT 0,
     cert_id      BLOB    NOT NULL,
     der          BLOB    NOT NULL,
     PRIMARY KEY (ca, serial, hash, produced_at)
   );
   CREATE TABLE status_changes (
     seq     INTEGER PRIMARY KEY AUTOINCREMENT,
     ca      TEXT    NOT NULL,
     serial  TEXT    NOT NULL,
     kind    TEXT    NOT NULL CHECK (kind IN ('issued', 'revoked', 'updated')),
     at      INTEGER NOT NULL
   );`,
  // The last full and delta CRL applied per CA (crl-state.ts); CRL numbers as decimal text (up to 160 bits).
  `CREATE TABLE crls (
     ca               TEXT    NOT NULL,
     kind             TEXT    NOT NULL CHECK (kind IN ('full', 'delta')),
     crl_number       TEXT,
     base_crl_number  TEXT,
     this_update      INTEGER NOT NULL,
     next_update      INTEGER,
     freshest_urls    TEXT    NOT NULL DEFAULT '',
     applied_at       INTEGER NOT NULL,
     PRIMARY KEY (ca, kind)
   ) WITHOUT ROWID`,
  // The certificate profile a response was produced under: its HTTP maxAge may differ (RFC 9919 section 6.2).
  `ALTER TABLE responses ADD COLUMN profile TEXT`,
  // Versions for the compare-and-set of stored responses: the seq of the certificate's latest status change, and
  // the one a response was made from. 0 for what was written before (no backfill: any later change moves it on).
  `ALTER TABLE certificates ADD COLUMN status_seq INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE responses ADD COLUMN status_seq INTEGER NOT NULL DEFAULT 0;`,
  // Who signed each response (hex SHA-256 of the signer certificate): a rotated signer's responses are re-signed.
  `ALTER TABLE responses ADD COLUMN signer TEXT NOT NULL DEFAULT ''`,
  // Leases (lease-store.ts): the work done once per cluster runs in the process holding one; times in ms.
  `CREATE TABLE leases (
     name         TEXT    PRIMARY KEY,
     holder       TEXT    NOT NULL,
     epoch        INTEGER NOT NULL,
     acquired_at  INTEGER NOT NULL,
     expires_at   INTEGER NOT NULL
   ) WITHOUT ROWID`,
  // One heartbeat row per responder process: the change it has applied (responder-store.ts, issue 15).
  `CREATE TABLE responders (
     id            TEXT    NOT NULL PRIMARY KEY,
     host          TEXT    NOT NULL,
     pid           INTEGER NOT NULL,
     worker        INTEGER NOT NULL,
     started_at    INTEGER NOT NULL,
     heartbeat_at  INTEGER NOT NULL,
     applied_seq   INTEGER NOT NULL,
     ready         INTEGER NOT NULL
   ) WITHOUT ROWID`,
];
