// Read-only queries on a SQLite store file in a worker thread of its own. better-sqlite3 is synchronous: an
// aggregate over every certificate (a pre-signer's count, the freshness figures for /metrics) would stop the
// event loop for as long as it runs (about 0.25 s per 200,000 certificates), and with it every OCSP answer.
// WAL mode lets this second connection read what the daemon's own connection has committed.
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class BackgroundReader {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly file: string) {}

  /** The first column of the first row of `sql` (named parameters), or undefined. */
  value(sql: string, params: Record<string, unknown>): Promise<unknown> {
    const worker = this.start();
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      // Held open while a query is pending, never while idle.
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, sql, params });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  /** Started on first use and kept; it holds the process open only while a query is pending. */
  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(join(__dirname, 'background-reader-worker.js'), { workerData: { file: this.file } });
    w.on('message', (m: { id: number; value?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (this.pending.size === 0) w.unref();
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.value);
    });
    const failAll = (e: Error) => {
      if (this.worker === w) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    w.on('error', failAll);
    w.on('exit', (code) => failAll(new Error(`SQLite reader thread exited (${code})`)));
    // After the listeners: adding a 'message' listener refs the worker again.
    w.unref();
    this.worker = w;
    return w;
  }
}
