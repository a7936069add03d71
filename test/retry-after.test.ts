// tryLater tells when: the signing limiter's estimate of when a refused client may come back, how it crosses the
// IPC channel, and the Retry-After header it becomes at the HTTP edge.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { FakeClock, systemClock } from '../src/clock';
import { decodeError, encodeError } from '../src/cluster/errors';
import { createApp } from '../src/http/app';
import { trustedProxyList } from '../src/http/client-address';
import { createOcspHandler } from '../src/http/ocsp-handler';
import { createHttpServer } from '../src/http/server';
import { MalformedRequestError, TryLaterError } from '../src/ocsp/errors';
import type { OcspRequest } from '../src/ocsp/request';
import { LimiterOptions, LimiterRejectedError, limiterRefusal, MAX_RETRY_AFTER_SECONDS, Permit, SigningLimiter } from '../src/signing/signing-limiter';
import type { RequestContext, Source } from '../src/source/source';
import { tick } from './support/limiter-load';
import { buildRequest } from './support/requests';

function limiter(o: Partial<LimiterOptions>, clock = new FakeClock()) {
  const l = new SigningLimiter({ name: 't', ratePerSecond: 0, burst: 1, maxConcurrent: 1, maxQueue: 4, queueTimeoutMs: 60_000, clientShare: 1, clock, ...o });
  return { l, clock };
}

function track(p: Promise<Permit>) {
  const t: { permit?: Permit; error?: LimiterRejectedError } = {};
  p.then((x) => (t.permit = x), (e) => (t.error = e));
  return t;
}

/** `n` live requests of `client`, tracked. */
function ask(l: SigningLimiter, n: number, client = 'a') {
  return Array.from({ length: n }, () => track(l.acquire({ lane: 'live', client })));
}

describe('the signing limiter\'s Retry-After estimate', () => {
  it('at a rate ceiling: the queue, one more included, at the rate (10 waiting + 1 at 2/s: 5.5 s, told 6)', async () => {
    const { l } = limiter({ ratePerSecond: 2, burst: 1, maxConcurrent: 100, maxQueue: 10 });
    const [first, ...waiting] = ask(l, 11);
    const [over] = ask(l, 1, 'b');
    await tick();
    assert.ok(first!.permit, 'the first takes the token');
    assert.ok(waiting.every((w) => !w.permit && !w.error), 'ten wait for tokens');
    assert.equal(over!.error?.reason, 'queue_full');
    assert.equal(over!.error?.retryAfterSeconds, 6);
  });

  it('without a rate: batches of maxConcurrent at the recent time a signature holds its permit (3 batches of 3 s: 9)', async () => {
    const { l, clock } = limiter({ maxConcurrent: 2, maxQueue: 4 });
    for (let i = 0; i < 2; i++) {
      const pair = ask(l, 2);
      await tick();
      clock.advance(3000);
      for (const p of pair) p.permit!.release();
    }
    ask(l, 6); // two signing, four waiting
    const [over] = ask(l, 1, 'b');
    await tick();
    assert.equal(over!.error?.reason, 'queue_full');
    assert.equal(over!.error?.retryAfterSeconds, 9);
  });

  it('follows the signature time as it changes (smoothed: one slow signature does not set it alone)', async () => {
    const { l, clock } = limiter({ maxConcurrent: 1, maxQueue: 0 });
    /** A signature holding the only slot, and the request refused meanwhile. */
    const busy = async () => {
      const [signing] = ask(l, 1);
      const [over] = ask(l, 1);
      await tick();
      assert.equal(over!.error?.reason, 'queue_full');
      return { permit: signing!.permit!, retryAfter: over!.error!.retryAfterSeconds };
    };
    const first = await busy();
    assert.equal(first.retryAfter, 1, 'no signature time known yet');
    clock.advance(2000);
    first.permit.release();
    const second = await busy();
    assert.equal(second.retryAfter, 2);
    clock.advance(12_000);
    second.permit.release(); // 2 s + 0.2 × (12 s - 2 s)
    const third = await busy();
    assert.equal(third.retryAfter, 4);
    third.permit.release();
  });

  it('client_share and deadline refusals carry the estimate too; a waiter refused at its deadline as well', async () => {
    const share = limiter({ ratePerSecond: 1, burst: 1, maxConcurrent: 10, maxQueue: 4, clientShare: 0.5 }).l;
    const [, , , shareOver] = ask(share, 4); // one signing, two waiting: the client's half of the queue
    await tick();
    assert.equal(shareOver!.error?.reason, 'client_share');
    assert.equal(shareOver!.error?.retryAfterSeconds, 3);

    const slow = limiter({ ratePerSecond: 0.25, burst: 1, maxConcurrent: 10, queueTimeoutMs: 250 }).l;
    const [, late] = ask(slow, 2);
    await tick();
    assert.equal(late!.error?.reason, 'deadline');
    assert.equal(late!.error?.retryAfterSeconds, 4, 'the next token is 4 s away at 0.25/s');

    const { l, clock } = limiter({ maxConcurrent: 1, queueTimeoutMs: 250 });
    const [p] = ask(l, 1);
    await tick();
    clock.advance(5000);
    p!.permit!.release(); // one signature of 5 s seen
    const [held, waiter] = ask(l, 2);
    await tick();
    assert.ok(held!.permit);
    assert.equal(l.queueDepth('live'), 1, 'the other waits');
    clock.advance(250);
    await tick();
    assert.equal(waiter!.error?.reason, 'deadline');
    assert.equal(waiter!.error?.retryAfterSeconds, 5);
  });

  it('is whole seconds from 1 to 60: an idle limiter says 1, a backlog of minutes says 60', async () => {
    const idle = limiter({ maxConcurrent: 1, maxQueue: 0 }).l;
    const [held, over] = ask(idle, 2);
    await tick();
    assert.ok(held!.permit);
    assert.equal(over!.error?.retryAfterSeconds, 1, 'no signature time known yet');
    const crawl = limiter({ ratePerSecond: 0.1, burst: 1, maxConcurrent: 10, maxQueue: 10, queueTimeoutMs: 1_000_000 }).l;
    const all = ask(crawl, 12);
    await tick();
    assert.equal(all.at(-1)!.error?.reason, 'queue_full');
    assert.equal(all.at(-1)!.error?.retryAfterSeconds, MAX_RETRY_AFTER_SECONDS, '110 s of backlog');
  });

  it('refusals stay shared objects, one per reason and number of seconds', () => {
    assert.equal(limiterRefusal('queue_full', 7), limiterRefusal('queue_full', 7));
    assert.notEqual(limiterRefusal('queue_full', 7), limiterRefusal('queue_full', 8));
    assert.equal(limiterRefusal('deadline', 3).reason, 'deadline');
  });

  it('crosses the IPC channel to a serving process with its Retry-After', () => {
    const back = decodeError(encodeError(limiterRefusal('client_share', 12))) as LimiterRejectedError;
    assert.ok(back instanceof LimiterRejectedError);
    assert.equal(back.reason, 'client_share');
    assert.equal(back.retryAfterSeconds, 12);
    assert.equal(decodeError(encodeError(limiterRefusal('client_share', 12))), back, 'shared on this side too');
  });
});

/** Signs under a real limiter and holds every permit: the second request meets a busy limiter. */
class LimitedSource implements Source<OcspRequest> {
  readonly held: Permit[] = [];
  constructor(private readonly limiter: SigningLimiter) {}
  async response(req: OcspRequest, ctx: RequestContext) {
    const serial = req.certIds[0]!.serial;
    if (serial === '33') throw new TryLaterError('token unavailable');
    if (serial === '11') throw new MalformedRequestError('bad');
    if (serial === '77') await new Promise((r) => setTimeout(r, 1000));
    if (serial === '55') this.held.push(await this.limiter.acquire({ lane: 'live', ...(ctx.client ? { client: ctx.client } : {}) }));
    const t = new Date();
    return { der: Buffer.from('30030a0100', 'hex'), producedAt: t, thisUpdate: t, nextUpdate: t };
  }
}

describe('Retry-After on tryLater answers over HTTP', () => {
  let server: Server;
  let base: string;
  // 1 signature per 4 s, none queued: the second signature is refused, its token 4 s away.
  const limited = new SigningLimiter({
    name: 'token', ratePerSecond: 0.25, burst: 1, maxConcurrent: 4, maxQueue: 0, queueTimeoutMs: 250, clientShare: 1, clock: new FakeClock(),
  });
  const source = new LimitedSource(limited);

  before(async () => {
    const logger = pino({ level: 'silent' });
    const ocsp = createOcspHandler({
      source, limits: { maxCertIds: 5 }, bodyLimit: 4096, responseTimeoutMs: 300, logger, clock: systemClock, trustedProxies: trustedProxyList([]),
    });
    server = createHttpServer(ocsp, createApp({ ready: async () => true, logger }));
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    for (const p of source.held) p.release();
    return new Promise<void>((r) => server.close(() => r()));
  });

  /** Serials are matched in hex, as the request carries them. */
  const post = async (serial: number) => {
    const r = await fetch(base + '/', { method: 'POST', body: buildRequest({ serials: [serial] }), headers: { 'content-type': 'application/ocsp-request' }, signal: AbortSignal.timeout(5000) });
    const body = Buffer.from(await r.arrayBuffer());
    return { http: r.status, ocspStatus: body[4], retryAfter: r.headers.get('retry-after') };
  };
  const TRY_LATER = 3;

  it('a limiter refusal: the limiter\'s estimate', async () => {
    assert.deepEqual(await post(0x55), { http: 200, ocspStatus: 0, retryAfter: null }, 'signed: no Retry-After');
    assert.deepEqual(await post(0x55), { http: 200, ocspStatus: TRY_LATER, retryAfter: '4' });
  });

  it('any other tryLater (token unavailable, the response timeout): 1 second', async () => {
    assert.deepEqual(await post(0x33), { http: 200, ocspStatus: TRY_LATER, retryAfter: '1' });
    assert.deepEqual(await post(0x77), { http: 200, ocspStatus: TRY_LATER, retryAfter: '1' });
  });

  it('no Retry-After on other errors', async () => {
    const r = await post(0x11);
    assert.equal(r.ocspStatus, 1);
    assert.equal(r.retryAfter, null);
  });
});
