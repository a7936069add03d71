// A key's own limits on top of its token's (acquireAll): nothing of the key is held while waiting at the token,
// and neither ceiling is ever passed, on a fake clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Clock, FakeClock } from '../src/clock';
import { acquireAll } from '../src/signing/permits';
import { LimiterOptions, LimiterRejectedError, Permit, SigningLimiter } from '../src/signing/signing-limiter';
import { CountingClock, Demand, overCeiling, saturate, steppedClock, tick } from './support/limiter-load';

/** A token's limiter, or (maxQueue etc. unused) a key's, as cli/limiter.ts makes them. */
function limiter(name: string, clock: Clock, o: Partial<LimiterOptions> = {}) {
  return new SigningLimiter({ name, ratePerSecond: 0, burst: 1, maxConcurrent: Infinity, maxQueue: 256, queueTimeoutMs: 250, clientShare: 1, clock, ...o });
}

function track(p: Promise<Permit>) {
  const t: { permit?: Permit; error?: LimiterRejectedError } = {};
  p.then((x) => (t.permit = x), (e) => (t.error = e));
  return t;
}

describe('acquireAll: a key\'s limits on top of its token\'s', () => {
  it('holds nothing of the key while queued at the token, and a busy key holds up no other key', async () => {
    const clock = new FakeClock();
    const token = limiter('token', clock, { maxConcurrent: 2, queueTimeoutMs: 10_000 });
    const keyA = limiter('token/a', clock, { maxConcurrent: 1 });
    const b1 = track(acquireAll([token], { lane: 'live' }));
    const b2 = track(acquireAll([token], { lane: 'live' }));
    const a1 = track(acquireAll([keyA, token], { lane: 'live' }));
    const a2 = track(acquireAll([keyA, token], { lane: 'live' }));
    await tick();
    assert.ok(b1.permit && b2.permit);
    assert.equal(keyA.inFlightCount, 0, 'no permit of key A while its requests wait at the token');
    assert.equal(token.queueDepth('live'), 2);
    b1.permit.release();
    await tick();
    assert.ok(a1.permit, 'the first waiter starts, with both permits at once');
    assert.equal(keyA.inFlightCount, 1);
    assert.equal(token.inFlightCount, 2);
    const b3 = track(acquireAll([token], { lane: 'live' }));
    b2.permit.release();
    await tick();
    assert.equal(a2.permit, undefined, 'key A is at its own ceiling');
    assert.ok(b3.permit, 'the token\'s free slot goes to the next request whose key can start');
    a1.permit!.release();
    await tick();
    assert.ok(a2.permit, 'key A and the token slot it frees: the next of key A starts');
    assert.equal(keyA.inFlightCount, 1);
    assert.equal(token.inFlightCount, 2);
  });

  it('never starts more of a key\'s signatures than its own rate and burst allow, however long they waited at the token', async () => {
    const clock = new FakeClock();
    const token = limiter('token', clock, { maxConcurrent: 1, maxQueue: 100, queueTimeoutMs: 5000 });
    const keyA = limiter('token/a', clock, { ratePerSecond: 10, burst: 2 });
    const other = track(acquireAll([token], { lane: 'live' }));
    await tick();
    const starts: number[] = [];
    const ask = () => acquireAll([keyA, token], { lane: 'live' }).then((p) => (starts.push(clock.monotonicMs()), p.release()), () => undefined);
    // Key A's requests arrive for 1 s while another key's signature holds the token's only slot.
    for (let t = 0; t < 1000; t += 20) {
      ask();
      clock.advance(20);
      await tick();
    }
    other.permit!.release();
    for (let t = 0; t < 2000; t += 1) {
      clock.advance(1);
      await tick();
    }
    assert.ok(starts.length >= 2, `${starts.length} of key A's signatures started`);
    assert.equal(overCeiling(starts, 10, 2), undefined, 'key A above its own ceiling');
  });

  it('refuses at once a request its key\'s rate could only start after the deadline', async () => {
    const clock = new FakeClock();
    const token = limiter('token', clock, { maxConcurrent: 4, queueTimeoutMs: 250 });
    const keyA = limiter('token/a', clock, { ratePerSecond: 10, burst: 1 });
    const got = Array.from({ length: 6 }, () => track(acquireAll([keyA, token], { lane: 'live' })));
    await tick();
    // 1 from key A's burst; at 10/s two more start within 250 ms; the rest is refused now, not after waiting.
    assert.equal(got.filter((g) => g.permit).length, 1);
    assert.equal(got.filter((g) => g.error?.reason === 'deadline').length, 3);
    assert.equal(token.queueDepth('live'), 2);
  });

  it('arms no timer while a waiter\'s key is at its concurrency ceiling: only a release can start it', async () => {
    const clock = new CountingClock();
    const token = limiter('token', clock, { ratePerSecond: 100, burst: 10, maxConcurrent: 4, queueTimeoutMs: 1e9 });
    const keyA = limiter('token/a', clock, { ratePerSecond: 100, burst: 10, maxConcurrent: 1 });
    const a1 = track(acquireAll([keyA, token], { lane: 'presign' }));
    const a2 = track(acquireAll([keyA, token], { lane: 'presign' }));
    await tick();
    assert.ok(a1.permit);
    clock.advance(1000);
    await tick();
    assert.equal(clock.armed, 0);
    a1.permit!.release();
    await tick();
    assert.ok(a2.permit);
  });
});

describe('acquireAll under saturating demand: two keys on one token', () => {
  const N = 10;
  for (const [stepMs, maxConcurrent] of [[1, 4], [50, 100]] as const) {
    it(`runs the token and a rate-limited key each at 95-100% of its ceiling, timers every ${stepMs} ms, ${maxConcurrent} slots`, async () => {
      const { clock, fake } = steppedClock(stepMs);
      const token = limiter('token', clock, { ratePerSecond: 200, burst: 20, maxConcurrent, maxQueue: 64, queueTimeoutMs: 250, clientShare: 0.5 });
      const keyA = limiter('token/a', clock, { ratePerSecond: 50, burst: 5 });
      // Each key's callers are one client, as two busy relying parties would be.
      const a: Demand = { acquire: () => acquireAll([keyA, token], { lane: 'live', client: 'a' }), workers: 32, grants: [] };
      const b: Demand = { acquire: () => acquireAll([token], { lane: 'live', client: 'b' }), workers: 32, grants: [] };
      await saturate(clock, fake, [a, b], { stepMs, seconds: N });
      const all = [...a.grants, ...b.grants];
      assert.ok(all.length >= 0.95 * 200 * N, `token: ${all.length} signatures in ${N} s at 200/s`);
      assert.equal(overCeiling(all, 200, 20), undefined, 'the token above its ceiling');
      assert.ok(a.grants.length >= 0.95 * 50 * N, `key A: ${a.grants.length} signatures in ${N} s at 50/s`);
      assert.equal(overCeiling(a.grants, 50, 5), undefined, 'key A above its ceiling');
    });
  }
});
