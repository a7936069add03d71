// The signing limiter on a fake clock: rate and burst, concurrency, queue bounds, deadlines, lanes, fairness.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../src/clock';
import { LimiterOptions, LimiterRejectedError, Permit, PermitNotFreeError, RejectReason, SigningLimiter } from '../src/signing/signing-limiter';
import { acquireAll } from '../src/signing/permits';
import { CountingClock, Demand, maxInWindow, overCeiling, saturate, steppedClock, tick } from './support/limiter-load';

function limiter(o: Partial<LimiterOptions> = {}, clock = new FakeClock()) {
  const rejections: RejectReason[] = [];
  const l = new SigningLimiter({
    name: 't', ratePerSecond: 0, burst: 1, maxConcurrent: 2, maxQueue: 4, queueTimeoutMs: 1000, clientShare: 1, clock,
    onReject: (_, r) => rejections.push(r), ...o,
  });
  return { l, clock, rejections };
}


function track(p: Promise<Permit>) {
  const t: { permit?: Permit; error?: LimiterRejectedError } = {};
  p.then((x) => (t.permit = x), (e) => (t.error = e));
  return t;
}

describe('SigningLimiter', () => {
  it('grants up to maxConcurrent at once and queues the rest in order', async () => {
    const { l } = limiter();
    const a = track(l.acquire({ lane: 'live' }));
    const b = track(l.acquire({ lane: 'live' }));
    const c = track(l.acquire({ lane: 'live' }));
    await tick();
    assert.ok(a.permit && b.permit && !c.permit);
    assert.equal(l.queueDepth('live'), 1);
    a.permit.release();
    await tick();
    assert.ok(c.permit, 'the waiter gets the freed slot');
    a.permit.release(); // releasing twice must not free a second slot
    const d = track(l.acquire({ lane: 'live' }));
    await tick();
    assert.equal(d.permit, undefined);
  });

  it('refuses at once when the queue is full', async () => {
    const { l, rejections } = limiter({ maxConcurrent: 1, maxQueue: 2 });
    const held = track(l.acquire({ lane: 'live' }));
    track(l.acquire({ lane: 'live' }));
    track(l.acquire({ lane: 'live' }));
    const over = track(l.acquire({ lane: 'live' }));
    await tick();
    assert.ok(held.permit);
    assert.equal(over.error?.reason, 'queue_full');
    assert.deepEqual(rejections, ['queue_full']);
  });

  it('rejects a waiter whose deadline passes, and only then', async () => {
    const { l, clock, rejections } = limiter({ maxConcurrent: 1, queueTimeoutMs: 100 });
    track(l.acquire({ lane: 'live' }));
    const w = track(l.acquire({ lane: 'live', deadlineMs: 50 }));
    clock.advance(49);
    await tick();
    assert.equal(w.error, undefined);
    clock.advance(1);
    await tick();
    assert.equal((w.error as LimiterRejectedError | undefined)?.reason, 'deadline');
    assert.equal(l.queueDepth('live'), 0);
    assert.deepEqual(rejections, ['deadline']);
  });

  it('holds the rate: burst at once, then one permit per 1/rate seconds', async () => {
    const { l, clock } = limiter({ ratePerSecond: 10, burst: 3, maxConcurrent: 100, maxQueue: 100, queueTimeoutMs: 10_000 });
    const got = Array.from({ length: 8 }, () => track(l.acquire({ lane: 'live' })));
    await tick();
    const granted = () => got.filter((g) => g.permit).length;
    assert.equal(granted(), 3, 'the burst');
    clock.advance(99);
    await tick();
    assert.equal(granted(), 3);
    clock.advance(1);
    await tick();
    assert.equal(granted(), 4, 'one more after 100 ms at 10/s');
    clock.advance(400);
    await tick();
    assert.equal(granted(), 8);
  });

  it('refuses immediately what could only wait past its deadline at the configured rate', async () => {
    const { l, rejections } = limiter({ ratePerSecond: 10, burst: 1, maxConcurrent: 100, maxQueue: 100, queueTimeoutMs: 250 });
    const got = Array.from({ length: 6 }, () => track(l.acquire({ lane: 'live' })));
    await tick();
    // 1 from the burst; at 10/s the queue can hold what starts within 250 ms (2 more); the rest is refused now.
    assert.equal(got.filter((g) => g.permit).length, 1);
    assert.equal(got.filter((g) => g.error?.reason === 'deadline').length, 3);
    assert.equal(l.queueDepth('live'), 2);
    assert.equal(rejections.length, 3);
  });

  it('serves live before pre-signing, and keeps one slot free of pre-signing', async () => {
    const { l } = limiter({ maxConcurrent: 2, maxQueue: 10 });
    const p1 = track(l.acquire({ lane: 'presign' }));
    const p2 = track(l.acquire({ lane: 'presign' }));
    await tick();
    assert.ok(p1.permit, 'pre-signing may start when idle');
    assert.equal(p2.permit, undefined, 'but leaves the last slot to live traffic');
    const live = track(l.acquire({ lane: 'live' }));
    await tick();
    assert.ok(live.permit, 'live uses the reserved slot at once');
    const live2 = track(l.acquire({ lane: 'live' }));
    p1.permit!.release();
    await tick();
    assert.ok(live2.permit, 'a freed slot goes to the waiting live request first');
    assert.equal(p2.permit, undefined);
    live.permit!.release();
    live2.permit!.release();
    await tick();
    assert.ok(p2.permit, 'pre-signing resumes when live traffic is gone');
  });

  it('arms no timer while pre-signing waits only for the slot kept for live traffic', async () => {
    // Only a release can free that slot: a refill timer would wake up every millisecond for nothing.
    const clock = new CountingClock();
    const { l } = limiter({ ratePerSecond: 200, burst: 20, maxConcurrent: 2, maxQueue: 10 }, clock);
    const p1 = track(l.acquire({ lane: 'presign' }));
    const p2 = track(l.acquire({ lane: 'presign' }));
    await tick();
    assert.ok(p1.permit);
    assert.equal(p2.permit, undefined);
    for (let t = 0; t < 1000; t += 1) {
      clock.advance(1);
      await tick();
    }
    assert.equal(clock.armed, 0, 'timers armed in 1 s while blocked by the reserved slot');
    assert.equal(p2.permit, undefined);
    p1.permit!.release();
    await tick();
    assert.ok(p2.permit, 'the release lets it start');
  });

  it('arms no timer while pre-signing waits for the reserved slot with an empty bucket, and one when the rate is all that blocks', async () => {
    const clock = new CountingClock();
    const { l } = limiter({ ratePerSecond: 10, burst: 1, maxConcurrent: 2, maxQueue: 10 }, clock);
    const p1 = track(l.acquire({ lane: 'presign' }));
    const p2 = track(l.acquire({ lane: 'presign' }));
    await tick();
    clock.advance(50);
    await tick();
    assert.equal(clock.armed, 0, 'a refill would not let it start: no timer');
    p1.permit!.release(); // half a token in the bucket: now only the rate blocks
    await tick();
    assert.equal(clock.armed, 1);
    clock.advance(49);
    await tick();
    assert.equal(p2.permit, undefined);
    clock.advance(1);
    await tick();
    assert.ok(p2.permit, 'granted when the bucket has a token again, 100 ms after the last grant');
    assert.equal(clock.armed, 1);
  });

  it('gives a quiet client its turn while a flooder waits, and caps the flooder\'s queue share', async () => {
    const { l, rejections } = limiter({ maxConcurrent: 2, maxQueue: 8, clientShare: 0.5 });
    const flood = Array.from({ length: 10 }, () => track(l.acquire({ lane: 'live', client: 'flooder' })));
    await tick();
    // 2 in flight, 4 queued (half of maxQueue), 4 refused.
    assert.equal(flood.filter((f) => f.permit).length, 2);
    assert.equal(flood.filter((f) => f.error?.reason === 'client_share').length, 4);
    const quiet = track(l.acquire({ lane: 'live', client: 'quiet' }));
    await tick();
    assert.equal(quiet.permit, undefined);
    flood[0]!.permit!.release();
    await tick();
    assert.ok(quiet.permit, 'the next free slot goes to the quiet client, ahead of 4 queued flood requests');
    assert.ok(rejections.every((r) => r === 'client_share'));
  });

  it('caps one client\'s in-flight share while others wait, but lets it use idle capacity', async () => {
    const { l } = limiter({ maxConcurrent: 4, maxQueue: 20, clientShare: 0.5 });
    const a = Array.from({ length: 6 }, () => track(l.acquire({ lane: 'live', client: 'a' })));
    await tick();
    assert.equal(a.filter((x) => x.permit).length, 4, 'alone, a client may use all capacity');
    const b = Array.from({ length: 3 }, () => track(l.acquire({ lane: 'live', client: 'b' })));
    for (const x of a.filter((y) => y.permit)) x.permit!.release();
    await tick();
    // 4 slots freed: b (under its cap of 2) is preferred; a gets the rest.
    assert.equal(b.filter((x) => x.permit).length, 2);
    assert.equal(a.filter((x) => x.permit).length, 6);
  });
});

// A request that may not wait (a nonce signed only when idle, preProduction.nonce whenIdle): a permit at once or
// PermitNotFreeError at once; never queued, never counted as an overload refusal.
describe('SigningLimiter: immediate permits', () => {
  const now = (l: SigningLimiter, client = 'strict') => track(l.acquire({ lane: 'live', client, immediate: true }));

  it('grants at once while the limiter is idle, and the permit counts like any other', async () => {
    const { l, rejections } = limiter({ maxConcurrent: 3 });
    const a = now(l);
    await tick();
    assert.ok(a.permit);
    assert.equal(l.inFlightCount, 1);
    a.permit.release();
    assert.equal(l.inFlightCount, 0);
    assert.deepEqual(rejections, []);
  });

  it('is refused at once, not queued, while a live request waits, even with slots free: live misses go first', async () => {
    // The live request waits for its key's own ceiling; the token has slots to spare.
    const { l: token, rejections } = limiter({ maxConcurrent: 8 });
    const { l: key } = limiter({ name: 'key', maxConcurrent: 1 });
    const held = track(acquireAll([key, token], { lane: 'live', client: 'a' }));
    const waiting = track(acquireAll([key, token], { lane: 'live', client: 'b' }));
    await tick();
    assert.ok(held.permit);
    assert.equal(token.queueDepth('live'), 1);
    const strict = now(token);
    await tick();
    assert.ok(strict.error instanceof PermitNotFreeError, `got ${String(strict.error)}`);
    assert.equal(token.queueDepth('live'), 1, 'only the live request waits');
    assert.deepEqual(rejections, [], 'not an overload refusal');
    held.permit.release();
    await tick();
    assert.ok(waiting.permit);
    const after = now(token);
    await tick();
    assert.ok(after.permit, 'nobody waits: granted');
  });

  it('leaves the slot kept for live requests, as pre-signing does, and takes the only slot of a limiter of one', async () => {
    const { l } = limiter({ maxConcurrent: 2 });
    const a = now(l, 'x');
    await tick();
    assert.ok(a.permit);
    const b = now(l, 'y');
    await tick();
    assert.ok(b.error instanceof PermitNotFreeError, 'the second slot stays free for a live miss');
    const live = track(l.acquire({ lane: 'live' }));
    await tick();
    assert.ok(live.permit, 'which gets it at once');
    const one = limiter({ maxConcurrent: 1 }).l;
    const c = now(one);
    await tick();
    assert.ok(c.permit);
  });

  it('leaves the rate\'s last token for live requests', async () => {
    const { l, clock } = limiter({ ratePerSecond: 10, burst: 2, maxConcurrent: 8 });
    const a = now(l);
    await tick();
    assert.ok(a.permit, 'two tokens: one may go');
    const b = now(l);
    await tick();
    assert.ok(b.error instanceof PermitNotFreeError, 'one token left: kept for live');
    clock.advance(100);
    const c = now(l);
    await tick();
    assert.ok(c.permit, 'refilled');
  });

  it('stays within the client\'s share of in-flight signatures', async () => {
    const { l } = limiter({ maxConcurrent: 4, clientShare: 0.5 });
    const flooder = [now(l, 'flooder'), now(l, 'flooder'), now(l, 'flooder')];
    await tick();
    assert.equal(flooder.filter((f) => f.permit).length, 2, 'its share: half of 4');
    assert.ok(flooder[2]!.error instanceof PermitNotFreeError);
    const strict = now(l, 'strict');
    await tick();
    assert.ok(strict.permit, 'another client still gets the third slot (the fourth is kept for live)');
    assert.equal(l.freeNow(undefined), false);
  });

  it('checks a key\'s own limits at the same instant (acquireAll)', async () => {
    const { l: token } = limiter({ maxConcurrent: 8 });
    const { l: key } = limiter({ name: 'key', maxConcurrent: 1 });
    const held = track(acquireAll([key, token], { lane: 'live' }));
    await tick();
    assert.ok(held.permit);
    const strict = track(acquireAll([key, token], { lane: 'live', client: 'strict', immediate: true }));
    await tick();
    assert.ok(strict.error instanceof PermitNotFreeError, 'the key is at its ceiling');
    assert.equal(token.queueDepth('live'), 0);
    held.permit.release();
    const again = track(acquireAll([key, token], { lane: 'live', client: 'strict', immediate: true }));
    await tick();
    assert.ok(again.permit);
  });
});

/** The hsm-limits scenario's live demand, one client, on a stepped clock: when each permit was granted. */
async function saturateLive(o: Partial<LimiterOptions>, { stepMs, seconds, workers = 64, holdMs = 2 }: { stepMs: number; seconds: number; workers?: number; holdMs?: number }) {
  const { clock, fake } = steppedClock(stepMs);
  const l = new SigningLimiter({ name: 't', ratePerSecond: 0, burst: 1, maxConcurrent: 4, maxQueue: 64, queueTimeoutMs: 250, clientShare: 0.5, ...o, clock });
  const live: Demand = { acquire: () => l.acquire({ lane: 'live', client: '127.0.0.1' }), workers, holdMs, grants: [] };
  await saturate(clock, fake, [live], { stepMs, seconds });
  return live.grants;
}

describe('SigningLimiter under saturating demand (the hsm-limits scenario on a fake clock)', () => {
  const scenario = { ratePerSecond: 200, burst: 20, maxConcurrent: 4, maxQueue: 64, queueTimeoutMs: 250, clientShare: 0.5 };
  const N = 10;

  // Timers every 1 ms: Node's whole-millisecond timers, permits held 2 ms on the scenario's 4 slots. Every 50-60 ms:
  // a daemon starved of CPU, whose permits stay held until its next turn; 100 slots, so that the rate, not the
  // concurrency ceiling, is what binds (4 slots held for a whole turn allow only 4 signatures per turn).
  for (const [rate, stepMs, maxConcurrent] of [[200, 1, 4], [300, 1, 4], [70, 1, 4], [200, 50, 100], [300, 60, 100]] as const) {
    it(`grants between 0.95·rate·N and rate·N + burst at ${rate}/s, timers firing every ${stepMs} ms, ${maxConcurrent} slots`, async () => {
      const grants = await saturateLive({ ...scenario, ratePerSecond: rate, maxConcurrent }, { stepMs, seconds: N });
      assert.ok(grants.length >= 0.95 * rate * N, `${grants.length} permits in ${N} s at ${rate}/s`);
      assert.ok(grants.length <= rate * N + scenario.burst, `${grants.length} permits in ${N} s at ${rate}/s`);
      assert.equal(overCeiling(grants, rate, scenario.burst), undefined);
    });
  }

  it('fills what live traffic leaves with pre-signing: the HSM at its ceiling, live served first', async () => {
    // One live caller holding each permit 20 ms asks for at most 50/s; eight pre-signing callers want the rest.
    const { clock, fake } = steppedClock(1);
    const l = new SigningLimiter({ name: 't', ...scenario, clock });
    const live: Demand = { acquire: () => l.acquire({ lane: 'live', client: 'a' }), workers: 1, holdMs: 20, grants: [] };
    const presign: Demand = { acquire: () => l.acquire({ lane: 'presign' }), workers: 8, grants: [] };
    await saturate(clock, fake, [live, presign], { stepMs: 1, seconds: N });
    const all = [...live.grants, ...presign.grants];
    assert.ok(all.length >= 0.95 * scenario.ratePerSecond * N, `${all.length} permits in ${N} s`);
    assert.equal(overCeiling(all, scenario.ratePerSecond, scenario.burst), undefined);
    // Back-to-back, the live caller asks every 20 ms; waiting behind pre-signing would show as fewer.
    assert.ok(live.grants.length >= 0.9 * (N * 1000) / 20, `${live.grants.length} live permits in ${N} s`);
  });

  it('does not make up after a stall longer than burst/rate: the ceiling holds in every second', async () => {
    // 300 ms without the CPU at 200/s would owe 60 permits; the bucket holds 20 (burst), so 20 is all that follows.
    // Making up the rest would put 60 signatures on the HSM at once.
    const grants = await saturateLive({ ...scenario, maxConcurrent: 100 }, { stepMs: 300, seconds: N, holdMs: 0 });
    assert.ok(maxInWindow(grants, 1000) <= scenario.ratePerSecond + scenario.burst, `${maxInWindow(grants, 1000)} permits in one second`);
    assert.ok(maxInWindow(grants, 1) <= scenario.burst, `${maxInWindow(grants, 1)} permits at once after a stall`);
    const turns = Math.floor((N * 1000) / 300);
    assert.ok(grants.length >= turns * scenario.burst, `${grants.length} permits in ${turns} turns: the full burst after each`);
  });
});
