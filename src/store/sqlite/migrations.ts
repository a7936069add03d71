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
];
