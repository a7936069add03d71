// The work done once per cluster, as the daemon wires it (cli/services.ts, the change follower), for two responders on
// one SQLite file, each on its own fake clock moved in step and its own signer counting signatures: the pre-signer
// scheduled on both runs on the lease holder only; a holder that dies mid-run leaves the rest to the next, which
// signs only what is still due; a paused holder's late batch is fenced off; production upon revocation happens once.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { FakeClock } from '../src/clock';
import { startLeaseWork } from '../src/cli/services';
import { LeaseKeeper } from '../src/cluster/lease-keeper';
import { validateConfig } from '../src/config/load';
import { IndexMetrics } from '../src/metrics/index-metrics';
import { PreSigner } from '../src/presign/pre-signer';
import type { Signer } from '../src/signing/signer';
import { Authority, makeAuthority } from '../src/source/authority';
import { ChangeFollower } from '../src/source/change-follower';
import { ResponseProducer } from '../src/source/response-producer';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { quiet } from './support/serving-chain';
import { softwarePki, SoftwarePki } from './support/software-pki';
import { advanceAll, settle } from './support/responder-clocks';
import { tempDir } from './support/temp';

const HOUR = 3_600_000;
const LEASE = 9_000;
const INTERVAL = 60_000;

/** A signer that counts, and from its `hangFrom`-th signature on never answers: a process killed mid-signature. */
class DyingSigner implements Signer {
  count = 0;
  hangFrom = Infinity;
  private resume: (() => void)[] = [];
  constructor(private readonly inner: Signer) {}
  get algorithm() {
    return this.inner.algorithm;
  }
  async sign(data: Buffer): Promise<Buffer> {
    if (++this.count >= this.hangFrom) await new Promise<void>((r) => this.resume.push(r));
    return this.inner.sign(data);
  }
  /** The held signatures finish (a paused process running again). */
  wake(): void {
    this.hangFrom = Infinity;
    for (const r of this.resume.splice(0)) r();
  }
}

interface Responder {
  clock: FakeClock;
  store: SqliteStore;
  signer: DyingSigner;
  keeper: LeaseKeeper;
  preSigner: PreSigner;
  follower: ChangeFollower;
  close(): Promise<void>;
}

/** Real time: signatures and the store run on the event loop, not on the fake clocks. */
async function until(check: () => Promise<boolean> | boolean, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

describe('work done once per cluster (two responders, one SQLite store)', () => {
  let pki: SoftwarePki;
  before(async () => {
    pki = await softwarePki();
  });

  function cluster() {
    const file = join(tempDir('lease-work'), 'store.sqlite');
    const start = new Date(Math.floor(Date.now() / 1000) * 1000);
    const responders: Responder[] = [];
    const loaded = validateConfig(
      {
        tokens: [{ name: 'hsm', module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'ocsp', pin: { env: 'OCSP_PIN' } }],
        cas: [{ name: 'unit', certificate: 'ca.pem', signer: { token: 'hsm', key: { label: 'resp' }, certificate: 'resp.pem' } }],
        preSigner: { interval: '1m', concurrency: 4, batchSize: 10 },
      },
      join(tempDir('lease-work-config'), 'config.yaml'),
    );
    const add = async (id: string): Promise<Responder> => {
      const clock = new FakeClock(start);
      if (responders[0]) clock.advance(responders[0].clock.monotonicMs());
      const store = new SqliteStore(file, clock);
      const signer = new DyingSigner(pki.responderSigner);
      const authority: Authority = makeAuthority({
        name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer, responderId: 'byKey', validityMs: HOUR,
        preProduction: { enabled: true, storeOnDemand: true, onIssuance: false, onRevocation: true, hashes: ['sha1', 'sha256'], finalResponsesBeforeMs: undefined },
      });
      const producer = new ResponseProducer(clock, store);
      const preSigner = new PreSigner(store, [authority], producer, clock, loaded.config.preSigner, quiet);
      const keeper = new LeaseKeeper(store, clock, { name: 'services', holder: id, leaseMs: LEASE }, quiet);
      const follower = new ChangeFollower(store, new Map([['unit', authority]]), producer, clock, quiet, { maxStalenessMs: 2_000, hold: () => keeper.current() });
      await follower.start();
      const work = startLeaseWork(loaded, { store, clock, logger: quiet as never, lease: keeper, preSigner, indexMetrics: new IndexMetrics(new Registry()), onApplied: () => undefined });
      const r: Responder = {
        clock, store, signer, keeper, preSigner, follower,
        close: async () => {
          await work.close();
          follower.close();
          await keeper.close();
        },
      };
      responders.push(r);
      await keeper.start();
      return r;
    };
    const advance = (ms: number, paused: Responder[] = []) => advanceAll(responders, ms, paused);
    // The test's own connection, as the CLI importing certificates would be.
    const admin = new SqliteStore(file, new FakeClock(start));
    const certificates = async (from: number, n: number) => {
      await admin.putCertificates(Array.from({ length: n }, (_, i) => ({ ca: 'unit', serial: (from + i).toString(16), status: 'good' as const })));
    };
    /** Certificates and hashes with at least one response, and the most responses any of them has. */
    const coverage = async () => {
      const rs = await admin.listResponses('unit', undefined, 100_000);
      const per = new Map<string, number>();
      for (const r of rs) per.set(`${r.serial}/${r.hash}`, (per.get(`${r.serial}/${r.hash}`) ?? 0) + 1);
      return { covered: per.size, most: Math.max(0, ...per.values()) };
    };
    return { add, advance, certificates, coverage, responders };
  }

  it('the pre-signer scheduled on both runs on the holder only: each due certificate and hash signed once', async () => {
    const c = cluster();
    await c.certificates(0x10000, 150);
    const a = await c.add('A');
    const b = await c.add('B');
    // A gained the lease at start: its first run is at once.
    await c.advance(100);
    assert.ok(await until(async () => (await c.coverage()).covered === 300), 'the run covered every certificate and hash');
    await c.advance(INTERVAL + 100);
    await until(() => a.signer.count + b.signer.count > 300, 300);
    assert.deepEqual({ a: a.signer.count, b: b.signer.count }, { a: 300, b: 0 });
    assert.deepEqual(await c.coverage(), { covered: 300, most: 1 });
    await Promise.all(c.responders.map((r) => r.close()));
  });

  it('a holder dead mid-run: the next holder takes over after the lease and signs only what is still due', async () => {
    const c = cluster();
    await c.certificates(0x20000, 200);
    const a = await c.add('A');
    const b = await c.add('B');
    a.signer.hangFrom = 151; // A dies with its 151st signature in flight, and the rest of its unstored batches
    await c.advance(100);
    assert.ok(await until(() => a.signer.count >= 151 + 3));
    await settle();
    const left = await c.coverage();
    assert.ok(left.covered >= 100 && left.covered <= 150, `A stored ${left.covered} before it died`);
    // A is dead: nothing of it runs again. B holds the lease once it expired and runs at once.
    await c.advance(LEASE + LEASE / 3 + 200, [a]);
    assert.equal(b.keeper.current()?.fence.epoch, 2);
    assert.ok(await until(async () => (await c.coverage()).covered === 400), 'B finished the run');
    assert.deepEqual(await c.coverage(), { covered: 400, most: 1 }, 'no certificate and hash signed into two responses');
    assert.equal(b.signer.count, 400 - left.covered, 'B signed exactly what A had not stored');

    // A was only paused: it runs again, its signatures finish, and its batch reaches the store, which refuses it.
    a.signer.wake();
    await c.advance(100);
    await a.preSigner.stop(); // its run has ended
    assert.equal(a.keeper.current(), undefined, 'A knows it lost the lease');
    assert.deepEqual(await c.coverage(), { covered: 400, most: 1 }, 'A\'s late batch was fenced off');
    await Promise.all(c.responders.map((r) => r.close()));
  });

  it('a revocation is produced once, by the holder; the other responder applies it but signs nothing', async () => {
    const c = cluster();
    await c.certificates(0x30000, 3);
    const a = await c.add('A');
    const b = await c.add('B');
    await c.advance(100);
    assert.ok(await until(async () => (await c.coverage()).covered === 6));
    const before = a.signer.count + b.signer.count;
    await a.store.revoke('unit', '30001', new Date(), 'keyCompromise');
    await Promise.all([a.follower.apply(), b.follower.apply()]);
    assert.ok(await until(async () => (await c.coverage()).covered === 6 && !!(await a.store.getResponse('unit', '30001', 'sha256'))));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual({ a: a.signer.count - before, b: b.signer.count }, { a: 2, b: 0 }, 'one signature per hash, on the holder');
    assert.equal(b.follower.seq, a.follower.seq, 'both applied the change');
    await Promise.all(c.responders.map((r) => r.close()));
  });

  it('closing the holder releases the lease: the other takes over the work at its next claim', async () => {
    const c = cluster();
    const a = await c.add('A');
    const b = await c.add('B');
    await c.advance(100);
    await a.close();
    await c.certificates(0x40000, 5);
    await c.advance(LEASE / 3 + 200, [a]);
    assert.equal(b.keeper.current()?.fence.epoch, 2);
    assert.ok(await until(async () => (await c.coverage()).covered === 10), 'the new holder ran the pre-signer at once');
    await b.close();
  });
});
