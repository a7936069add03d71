// The lease keeper on a real PostgreSQL, one responder reaching it through a TCP relay the test can cut, as a network
// partition would (bytes held, connections open, nothing refused): the cut-off holder stops at its local deadline,
// before the lease expires; another takes over after expiry; the old holder's batch, delivered once the partition
// heals, is refused by its fence. Each responder has its own fake clock, moved in step.
import assert from 'node:assert/strict';
import { createServer, Server, Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { FakeClock } from '../src/clock';
import { LeaseKeeper } from '../src/cluster/lease-keeper';
import { PostgresStore } from '../src/store/postgres/postgres-store';
import { response, stamp } from '../test/support/describe-store';
import { postgresCluster } from './support/postgres';

const LEASE = 9_000;
const quiet = { info: () => undefined, warn: () => undefined };

/** A TCP relay to `port` on 127.0.0.1 that holds every byte, both ways, while cut. */
class Partition {
  private cut = false;
  private readonly held: (() => void)[] = [];
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server) {}

  static async to(port: number): Promise<Partition & { port: number }> {
    let self: Partition;
    const server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(port, '127.0.0.1');
      for (const s of [client, upstream]) {
        self.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => self.sockets.delete(s));
      }
      const relay = (from: Socket, to: Socket) =>
        from.on('data', (d: Buffer) => (self.cut ? self.held.push(() => to.write(d)) : to.write(d)));
      relay(client, upstream);
      relay(upstream, client);
    });
    self = new Partition(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return Object.assign(self, { port: (server.address() as { port: number }).port });
  }

  sever(): void {
    this.cut = true;
  }

  heal(): void {
    this.cut = false;
    for (const send of this.held.splice(0)) send();
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

describe('LeaseKeeper on PostgreSQL', () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('a holder cut off from PostgreSQL stops at its local deadline; the other takes over after expiry; the late batch is fenced off', async () => {
    const pg = await postgresCluster();
    const db = await pg.createDatabase();
    const partition = await Partition.to(pg.port);
    cleanups.push(() => partition.close());
    const start = new Date(Math.floor(Date.now() / 1000) * 1000);
    const [clockA, clockB] = [new FakeClock(start), new FakeClock(start)];
    const a = await PostgresStore.open({ url: `postgres://postgres@127.0.0.1:${partition.port}/${db}`, poolSize: 4, clock: clockA });
    const b = await PostgresStore.open({ url: pg.url(db), poolSize: 4, clock: clockB });
    cleanups.push(() => b.close(), () => a.close());
    const keeperA = new LeaseKeeper(a, clockA, { name: 'services', holder: 'A', leaseMs: LEASE }, quiet);
    const keeperB = new LeaseKeeper(b, clockB, { name: 'services', holder: 'B', leaseMs: LEASE }, quiet);
    cleanups.push(() => keeperB.close());
    /** Moves both clocks in 100 ms steps; real time passes between them for PostgreSQL to answer. */
    const advance = async (ms: number) => {
      for (let done = 0; done < ms; done += 100) {
        clockA.advance(100);
        clockB.advance(100);
        await new Promise((r) => setTimeout(r, 15));
      }
    };
    await keeperA.start();
    await keeperB.start();
    const hold = keeperA.current()!;
    assert.equal(hold.fence.epoch, 1);
    assert.equal(keeperB.current(), undefined);
    await advance(LEASE); // renewed meanwhile
    assert.equal(keeperA.current(), hold);
    const [late] = await stamp(a, [response('p1', 'sha1', 0)]);

    // Cut right after a renewal: PostgreSQL keeps A's lease until that renewal's expiry.
    const renewal = (await b.readLease('services'))!;
    partition.sever();
    let endedAt: number | undefined;
    hold.signal.addEventListener('abort', () => (endedAt = clockA.now().getTime()));
    const storing = a.putResponses([late!], hold.fence); // sent into the partition: no answer
    await advance(LEASE + LEASE / 3 + 500);
    assert.ok(endedAt !== undefined, 'A stopped acting as holder');
    const renewedAt = renewal.expiresAt.getTime() - LEASE;
    assert.ok(endedAt - renewedAt <= 0.8 * LEASE + 200, `A stopped ${endedAt - renewedAt} ms after its last renewal`);
    assert.ok(endedAt < renewal.expiresAt.getTime(), 'before the lease expired in the store');
    assert.equal(keeperB.current()?.fence.epoch, 2, 'B took over after the expiry');
    const taken = (await b.readLease('services'))!;
    assert.ok(taken.acquiredAt.getTime() >= renewal.expiresAt.getTime());

    // The partition heals: A's batch reaches PostgreSQL after the takeover and is refused; A hears who holds the lease.
    partition.heal();
    assert.deepEqual(await storing, { stored: 0, skippedFinal: 0, stale: 1 });
    assert.equal(await b.getResponse('ca1', 'p1', 'sha1'), undefined);
    await advance(LEASE / 3 + 200);
    assert.equal(keeperA.current(), undefined);
    assert.equal((await b.readLease('services'))!.holder, 'B');
    await keeperA.close();
  });
});
