// Signing on session threads, with threads whose calls the test answers by hand and a fake clock: batches form
// only while every session is busy, a batch past signTimeout refuses all its signatures and sets the session
// aside, and the session's fate follows the call when it finally returns.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as pkcs11js from 'pkcs11js';
import { FakeClock } from '../src/clock';
import { SignerUnavailableError, SignTimeoutError } from '../src/hsm/faults';
import { SessionPool } from '../src/hsm/session-pool';
import { MAX_BATCH, SessionSigning, SigningHost } from '../src/hsm/session-signing';
import type { SessionThreadLike } from '../src/hsm/session-thread';
import type { Request, SignOutcome } from '../src/hsm/thread/protocol';
import { toWire } from '../src/hsm/thread/protocol';

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
    const jobs = (c.req as Extract<Request, { op: 'sign' }>).jobs;
    const e = code === undefined ? undefined : toWire(new pkcs11js.Pkcs11Error('failed', code, 'C_Sign'));
    c.answer(jobs.map((j): SignOutcome => (e ? { ok: false, error: e } : { ok: true, signature: Buffer.from(j.input) })));
  }
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
  it('one signature per call while sessions are free; queued ones go to the next free session as one batch', async () => {
    const { threads, sign, signing } = setup(2);
    const first = [sign(1), sign(2)];
    assert.deepEqual(threads.map((t) => t.calls.length), [1, 1], 'each free session took one');
    const queued = Array.from({ length: 5 }, (_, i) => sign(10 + i));
    assert.equal(signing.queued, 5, 'every session busy: they wait');
    threads[0]!.finish();
    await tick();
    const batch = (threads[0]!.calls[1]!.req as Extract<Request, { op: 'sign' }>).jobs;
    assert.equal(batch.length, 5, 'no other session was free: the free one took the whole queue in one call');
    assert.equal(signing.queued, 0);
    threads[1]!.finish();
    threads[0]!.finish();
    const sigs = await Promise.all([...first, ...queued]);
    assert.deepEqual(sigs.map((s) => s[0]), [1, 2, 10, 11, 12, 13, 14], 'each caller got its own signature');
  });

  it('a batch never exceeds MAX_BATCH', async () => {
    const { threads, sign } = setup(1);
    const all = [sign(0), ...Array.from({ length: MAX_BATCH + 10 }, (_, i) => sign(i + 1))];
    threads[0]!.finish();
    await tick();
    assert.equal((threads[0]!.calls[1]!.req as Extract<Request, { op: 'sign' }>).jobs.length, MAX_BATCH);
    threads[0]!.finish();
    await tick();
    assert.equal((threads[0]!.calls[2]!.req as Extract<Request, { op: 'sign' }>).jobs.length, 10);
    threads[0]!.finish();
    assert.equal((await Promise.all(all)).length, MAX_BATCH + 11);
  });

  it('past signTimeout every signature of the batch is refused, the session is set aside, and it comes back when the call returns', async () => {
    const { clock, threads, pool, sign, events } = setup(1);
    const a = sign(1);
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
    threads[0]!.finish(pkcs11js.CKR_SESSION_HANDLE_INVALID);
    await assert.rejects(a, SignerUnavailableError);
    assert.deepEqual(pool.counts(), { idle: 0, inUse: 0, broken: 1 });
    assert.ok(events.includes('fault:session'));
  });
});
