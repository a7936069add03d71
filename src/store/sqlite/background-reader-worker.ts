// The thread of background-reader.ts: a read-only connection answering one query per message.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database((workerData as { file: string }).file, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
const statements = new Map<string, Database.Statement>();

parentPort!.on('message', (m: { id: number; sql: string; params: Record<string, unknown> }) => {
  try {
    let st = statements.get(m.sql);
    if (!st) statements.set(m.sql, (st = db.prepare(m.sql).pluck()));
    parentPort!.postMessage({ id: m.id, value: st.get(m.params) });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});
