// `config check`'s look at the store: the SQLite file opens (or can be created), PostgreSQL answers. Read-only: a
// check neither creates the database nor migrates it, as the daemon's first start does (store.ts openStore).
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute } from 'node:path';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import type { LoadedConfig } from '../config/load';
import { postgresOpenProblem, sqliteFile } from './store';

const CONNECT_TIMEOUT_MS = 10_000;

/** What would keep the daemon from opening its store, one line per problem naming the field. */
export async function storeProblems(loaded: LoadedConfig): Promise<string[]> {
  const cfg = loaded.config.store;
  if (cfg.type === 'postgres') {
    const client = new Client({ connectionString: cfg.url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: 'ocsp-hsm config check' });
    client.on('error', () => undefined); // a connection dying after the query: the query has answered already
    try {
      await client.connect();
      await client.query('SELECT 1');
      return [];
    } catch (e) {
      return [postgresOpenProblem(cfg.url, e)];
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  const file = sqliteFile(loaded, cfg.path);
  // store.path names the file; a relative one lives in dataDir, the field to blame for the directory.
  const dirField = isAbsolute(cfg.path) ? 'store.path' : 'dataDir';
  if (!existsSync(file)) return creatable(dirname(file), dirField);
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      db.pragma('user_version', { simple: true });
    } finally {
      db.close();
    }
  } catch (e) {
    return [`store.path: cannot open the SQLite store ${file}: ${(e as Error).message}`];
  }
  // The daemon writes the file, and its -wal and -shm companions beside it.
  return [...writable(file, 'store.path', 'the SQLite store'), ...writable(dirname(file), dirField, 'the directory of the SQLite store')];
}

/** The daemon creates the store's directory (recursively) and file: the nearest existing ancestor must allow it. */
function creatable(dir: string, field: string): string[] {
  let existing = dir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  if (!statSync(existing).isDirectory()) return [`${field}: cannot create ${dir}: ${existing} is not a directory`];
  return writable(existing, field, `the directory the SQLite store would be created in`);
}

function writable(path: string, field: string, what: string): string[] {
  try {
    accessSync(path, constants.W_OK);
    return [];
  } catch (e) {
    return [`${field}: ${what} (${path}) is not writable: ${(e as NodeJS.ErrnoException).code ?? e}`];
  }
}
