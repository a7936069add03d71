// Opens the configured status store (SQLite file under dataDir).
import { isAbsolute, join } from 'node:path';
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import { SqliteStatusStore } from '../store/sqlite/sqlite-status-store';
import type { StatusStore } from '../store/status-store';

export function openStatusStore(loaded: LoadedConfig, clock: Clock): StatusStore {
  const dataDir = loaded.path(loaded.config.dataDir);
  const p = loaded.config.store.path;
  return new SqliteStatusStore(isAbsolute(p) ? p : join(dataDir, p), clock);
}
