// Opens the configured store: SQLite under dataDir (default) or PostgreSQL (store.url).
import { isAbsolute, join } from 'node:path';
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import type { Store } from '../store/response-store';
import { SqliteStore } from '../store/sqlite/sqlite-store';

export async function openStore(loaded: LoadedConfig, clock: Clock): Promise<Store> {
  const dataDir = loaded.path(loaded.config.dataDir);
  const p = loaded.config.store.path;
  return new SqliteStore(isAbsolute(p) ? p : join(dataDir, p), clock);
}
