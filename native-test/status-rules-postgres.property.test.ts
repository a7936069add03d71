// Issue 12 on PostgreSQL: the status-rule properties of test/status-rules.property.test.ts against one throwaway cluster.
import { after, it } from 'node:test';
import { FakeClock } from '../src/clock';
import { PostgresStore } from '../src/store/postgres/postgres-store';
import { checkSequences } from '../test/support/status-write-sequences';
import { postgresCluster } from './support/postgres';

let store: PostgresStore | undefined;
after(() => store?.close());

it('every writer on PostgreSQL: a final revocation never changes status, a hold is released only by a good or removeFromCRL, the counts match the store', async (t) => {
  const pg = await postgresCluster();
  store = await PostgresStore.open({ url: pg.url(await pg.createDatabase()), poolSize: 2, clock: new FakeClock() });
  const s = store;
  // One database for all sequences (creating one each would dominate the time): each sequence gets a CA of its own,
  // so its certificates and its CRL numbering start empty.
  let n = 0;
  await checkSequences(t, 1000, async () => ({ store: s, ca: `ca${++n}`, close: async () => undefined }));
});
