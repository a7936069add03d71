// Issue 12: the status rules hold over thousands of random write sequences from every writer, on SQLite.
import { it } from 'node:test';
import { FakeClock } from '../src/clock';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { checkSequences } from './support/status-write-sequences';

it('every writer on SQLite: a final revocation never changes status, a hold is released only by a good or removeFromCRL, the counts match the store', async (t) => {
  // A fresh in-memory store per sequence: no state leaks from one sequence to the next.
  await checkSequences(t, 2000, async () => {
    const store = new SqliteStore(':memory:', new FakeClock());
    return { store, ca: 'ca1', close: () => store.close() };
  });
});
