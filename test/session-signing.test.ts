// Signing on session threads, with threads whose calls the test answers by hand and a fake clock: the signatures
// asked for in one turn go out together, spread over the free sessions, and while every session is busy the next
// free one takes what queued as one batch; a batch past signTimeout refuses all its signatures and sets the session
// aside, and the session's fate follows the call when it finally returns.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as pkcs11js from 'pkcs11js';
import { FakeClock } from '../src/clock';
import { SignerUnavailableError, SignTimeoutError } from '../src/hsm/faults';
import { SessionPool } from '../src/hsm/session-pool';
import { MAX_BATCH, SessionSigning, SigningHost } from '../src/hsm/session-signing';
import type { SessionThreadLike } from '../src/hsm/session-thread';
import type { Request, SignJob, SignOutcome } from '../src/hsm/thread/protocol';
import { packOutcomes, packSignJobs, toWire, unpackResults, unpackSignJobs } from '../src/hsm/thread/protocol';

class HandThread implements SessionThreadLike {
  alive = true;
  calls: { req: Request; answer(v: unknown): void }[] = [];
  private open: { answer(v: unknown): void } | undefined;
  get inCall(): boolean {
    return this.open !== undefined;
  }
  call<T>(req: Request): Promise<T> {
    return new Promise<T>((resolve) => {
      const c = { req, answer: (v: unknown) => ((this.open = undefined), resolve(v as T)) };
      this.open = c;
      this.calls.push(c);
    });
  }
  terminate(): void {
    this.alive = false;
  }
  /** Answers the open sign call: every job signed (its input echoed), or failed with `code`. */
  finish(code?: number): void {
    const c = this.calls.at(-1)!;
    assert.equal(c.req.op, 'sign');
    const jobs = jobsOf(c.req);
    const e = code === undefined ? undefined : toWire(new pkcs11js.Pkcs11Error('failed', code, 'C_Sign'));
    c.answer(packOutcomes(jobs.map((j): SignOutcome => (e ? { ok: false, error: e } : { ok: true, signature: Buffer.from(j.input) }))));
  }
}

/** The signatures a sign call carries. */
function jobsOf(req: Request): SignJob[] {
  assert.equal(req.op, 'sign');
  return unpackSignJobs((req as Extract<Request, { op: 'sign' }>).batch);
}

function setup(sessions: number) {
  const clock = new FakeClock();
  const threads: HandThread[] = [];
  const pool = new SessionPool(sessions, () => {
    const t = new HandThread();
    threads.push(t);
    return t;
  });
  // Sessions as a bring-up leaves them: open, logged in, released for signing.
  for (let i = 0; i < sessions; i++) pool.give(pool.takeClosed()!, 'ok');
  pool.release();
  const events: string[] = [];
  const host: SigningHost = {
    name: 't', pool, clock, signTimeoutMs: 500, track: (c) => c,
    signed: (_k, _m, outcome) => events.push(outcome), fault: (kind) => events.push(`fault:${kind}`), stuck: () => events.push('stuck'), changed: () => undefined,
  };
  const signing = new SessionSigning(host);
  const sign = (n: number) => signing.sign('k', Buffer.from([1]), pkcs11js.CKM_ECDSA, 'CKM_ECDSA', Buffer.from([n]), 64);
  return { clock, threads, pool, signing, sign, events };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('signing on session threads', () => {
  it('signatures asked for in one turn are spread over the free sessions; queued ones go to the next free session as one batch', async () => {
    const { threads, sign, signing } = setup(2);
    const first = [sign(1), sign(2)];
    assert.equal(signing.queued, 2, 'handed over once the turn has asked for all it will');
    await tick();
    assert.deepEqual(threads.map((t) => t.calls.length), [1, 1], 'each free session took one');
    const queued = Array.from({ length: 5 }, (_, i) => sign(10 + i));
    await tick();
    assert.equal(signing.queued, 5, 'every session busy: they wait');
    threads[0]!.finish();
    await tick();
    const batch = jobsOf(threads[0]!.calls[1]!.req);
    assert.equal(batch.length, 5, 'no other session was free: the free one took the whole queue in one call');
    assert.equal(signing.queued, 0);
    threads[1]!.finish();
    threads[0]!.finish();
    const sigs = await Promise.all([...first, ...queued]);
    assert.deepEqual(sigs.map((s) => s[0]), [1, 2, 10, 11, 12, 13, 14], 'each caller got its own signature');
  });

  it('a turn\'s signatures go out as batches even while sessions are free, split evenly over them', async () => {
    const { threads, sign, signing } = setup(2);
    const all = Array.from({ length: 9 }, (_, i) => sign(i));
    await tick();
    assert.deepEqual(threads.map((t) => t.calls.length), [1, 1], 'one message to each session');
    assert.deepEqual(threads.map((t) => jobsOf(t.calls[0]!.req).length), [5, 4], 'half each');
    assert.equal(signing.queued, 0);
    threads[0]!.finish();
    threads[1]!.finish();
    assert.deepEqual((await Promise.all(all)).map((s) => s[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('a batch never exceeds MAX_BATCH', async () => {
    const { threads, sign } = setup(1);
    const all = [sign(0), ...Array.from({ length: MAX_BATCH + 10 }, (_, i) => sign(i + 1))];
    await tick();
    assert.equal(jobsOf(threads[0]!.calls[0]!.req).length, MAX_BATCH);
    threads[0]!.finish();
    await tick();
    assert.equal(jobsOf(threads[0]!.calls[1]!.req).length, 11);
    threads[0]!.finish();
    assert.equal((await Promise.all(all)).length, MAX_BATCH + 11);
  });

  it('past signTimeout every signature of the batch is refused, the session is set aside, and it comes back when the call returns', async () => {
    const { clock, threads, pool, sign, events } = setup(1);
    const a = sign(1);
    await tick();
    clock.advance(499);
    await tick();
    assert.equal(pool.counts().inUse, 1);
    clock.advance(1);
    await assert.rejects(a, SignTimeoutError);
    assert.deepEqual(pool.counts(), { idle: 0, inUse: 0, broken: 1 }, 'stuck');
    assert.ok(events.includes('stuck') && events.includes('timeout'));
    await assert.rejects(sign(2), SignerUnavailableError, 'no session can take it: refused at once, not queued');
    threads[0]!.finish();
    await tick();
    assert.deepEqual(pool.counts(), { idle: 1, inUse: 0, broken: 0 }, 'the late call succeeded: the session is back');
  });

  it('a session fault breaks the session and refuses as tryLater (SignerUnavailableError)', async () => {
    const { threads, pool, sign, events } = setup(1);
    const a = sign(1);
    await tick();
    threads[0]!.finish(pkcs11js.CKR_SESSION_HANDLE_INVALID);
    await assert.rejects(a, SignerUnavailableError);
    assert.deepEqual(pool.counts(), { idle: 0, inUse: 0, broken: 1 });
    assert.ok(events.includes('fault:session'));
  });
});

describe('the sign batch as it crosses to a session thread', () => {
  it('carries every job and outcome back in order: keys shared, inputs and signatures of any size, failures in place', () => {
    const k1 = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
    const k2 = Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]);
    const jobs: SignJob[] = Array.from({ length: 7 }, (_, i) => ({
      mechanism: i % 2 ? pkcs11js.CKM_ECDSA : pkcs11js.CKM_SHA256_RSA_PKCS, key: i === 3 ? k2 : k1, input: Buffer.alloc(i * 40, i), outLen: 64 + i,
    }));
    const batch = packSignJobs(jobs);
    assert.equal(batch.keys.length, 2, 'each key handle once');
    assert.equal(batch.inputs.byteLength, batch.inputs.buffer.byteLength, 'inputs in a buffer of their own, not a slice of the pool');
    const back = unpackSignJobs(structuredClone(batch));
    assert.deepEqual(back.map((j) => [j.mechanism, Buffer.from(j.key).toString('hex'), Buffer.from(j.input).toString('hex'), j.outLen]),
      jobs.map((j) => [j.mechanism, Buffer.from(j.key).toString('hex'), Buffer.from(j.input).toString('hex'), j.outLen]));

    const failure = toWire(new pkcs11js.Pkcs11Error('failed', pkcs11js.CKR_KEY_HANDLE_INVALID, 'C_SignInit'));
    const outcomes: SignOutcome[] = jobs.map((j, i) => (i === 2 || i === 5 ? { ok: false, error: failure } : { ok: true, signature: Buffer.alloc(i + 1, 0xa0 + i) }));
    const results = structuredClone(packOutcomes(outcomes));
    assert.equal(results.data.byteLength, results.data.buffer.byteLength);
    assert.deepEqual(unpackResults(results).map((o) => (o.ok ? Buffer.from(o.signature).toString('hex') : o.error.code)),
      outcomes.map((o) => (o.ok ? Buffer.from(o.signature).toString('hex') : o.error.code)));
  });
});
