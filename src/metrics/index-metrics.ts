// index.txt follower metrics: import attempts by result, and per followed CA when its index.txt was last imported,
// whether the file as it is now failed to import, and how many of its entries a final revocation overrode.
import { Counter, Gauge, Registry } from 'prom-client';
import type { IndexFailure, IndexFollowState } from '../ingest/index-follow';

export class IndexMetrics {
  private readonly imports: Counter<'ca' | 'result'>;
  /** The current followers' states (a reload builds new followers; a CA no longer followed disappears). */
  states: () => IndexFollowState[] = () => [];

  constructor(registry: Registry) {
    this.imports = new Counter({
      name: 'ocsp_index_imports_total',
      help: 'index.txt import attempts by CA and result (ok, invalid, missing, unreadable, store_error); a failure changes nothing.',
      labelNames: ['ca', 'result'],
      registers: [registry],
    });
    const self = this;
    const perCa = (name: string, help: string, value: (s: IndexFollowState) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['ca'],
        registers: [registry],
        collect() {
          this.reset();
          for (const s of self.states()) {
            const v = value(s);
            if (v !== undefined) this.set({ ca: s.ca }, v);
          }
        },
      });
    perCa('ocsp_index_last_import_timestamp_seconds', 'When the CA\'s index.txt was last imported (Unix time); absent until the first import.', (s) =>
      s.lastImportAt ? s.lastImportAt.getTime() / 1000 : undefined,
    );
    perCa('ocsp_index_import_failing', '1 while the CA\'s index.txt as it is now could not be imported (the statuses imported before stay), else 0.', (s) =>
      s.failing ? 1 : 0,
    );
    perCa('ocsp_index_kept_revoked_entries', 'Entries of the last imported index.txt that a final revocation kept from applying (README "Status rules").', (s) =>
      s.lastImportAt ? s.keptRevoked : undefined,
    );
  }

  count(ca: string, result: 'ok' | IndexFailure): void {
    this.imports.inc({ ca, result });
  }
}
