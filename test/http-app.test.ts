// The HTTP edge on 127.0.0.1 with behaviour-named fake sources: routes, methods, limits and the error->status map.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { systemClock } from '../src/clock';
import { createApp } from '../src/http/app';
import { createOcspHandler } from '../src/http/ocsp-handler';
import { HttpMetrics } from '../src/metrics/http-metrics';
import { RequestMemo } from '../src/http/request-memo';
import { createHttpServer } from '../src/http/server';
import { trustedProxyList } from '../src/http/client-address';
import { MalformedRequestError, TryLaterError, UnauthorizedError } from '../src/ocsp/errors';
import type { OcspRequest } from '../src/ocsp/request';
import { ERROR_RESPONSES } from '../src/ocsp/status-responses';
import type { HotAnswer, RequestContext, Source } from '../src/source/source';

let readiness = true;
import { buildRequest } from './support/requests';

const CANNED = Buffer.from('30030a0100', 'hex');

/** nextUpdate an hour from now, served until then (no compliance profile). */
const hourLeft = () => {
  const nextUpdateMs = Date.now() + 3_600_000;
  return { nextUpdateMs, usableUntilMs: nextUpdateMs };
};

/** Answers every request with the same bytes and remembers what it was asked. */
class RecordingSource implements Source<OcspRequest> {
  seen: OcspRequest[] = [];
  contexts: RequestContext[] = [];
  async response(req: OcspRequest, ctx: RequestContext) {
    this.seen.push(req);
    this.contexts.push(ctx);
    if (req.certIds[0]!.serial === '66') throw new UnauthorizedError('not ours');
    if (req.certIds[0]!.serial === '33') throw new TryLaterError('busy');
    if (req.certIds[0]!.serial === '99') throw new Error('boom');
    if (req.certIds[0]!.serial === '11') throw new MalformedRequestError('bad');
    if (req.certIds[0]!.serial === '77') await new Promise((r) => setTimeout(r, 2000));
    const t = new Date();
    return { der: CANNED, producedAt: t, thisUpdate: t, nextUpdate: t };
  }
}

describe('HTTP app', () => {
  let server: Server;
  let base: string;
  const source = new RecordingSource();

  before(async () => {
    const logger = pino({ level: 'silent' });
    const ocsp = createOcspHandler({
      source, limits: { maxCertIds: 5 }, bodyLimit: 4096, pathPrefix: '/ocsp', responseTimeoutMs: 300, logger,
      clock: systemClock, trustedProxies: trustedProxyList(['127.0.0.1']),
    });
    server = createHttpServer(ocsp, createApp({ ready: async () => readiness, logger }));
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const post = (path: string, body: Buffer, type = 'application/ocsp-request') =>
    fetch(base + path, { method: 'POST', body, headers: { 'content-type': type }, signal: AbortSignal.timeout(5000) });
  const bytes = async (r: Response) => Buffer.from(await r.arrayBuffer());

  it('answers POST at the root and under the prefix with application/ocsp-response', async () => {
    for (const path of ['/', '/ocsp', '/ocsp/']) {
      const r = await post(path, buildRequest({ serials: [5] }));
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get('content-type'), 'application/ocsp-response');
      assert.deepEqual(await bytes(r), CANNED);
    }
  });

  it('answers GET at the root and under the prefix, with %2F-encoded and raw base64', async () => {
    const b64 = buildRequest({ serials: [7] }).toString('base64');
    for (const path of ['/' + b64, '/ocsp/' + encodeURIComponent(b64), '/ocsp/' + b64.replace(/=+$/, '')]) {
      const r = await fetch(base + path, { signal: AbortSignal.timeout(5000) });
      assert.equal(r.status, 200, path);
      assert.deepEqual(await bytes(r), CANNED);
    }
    assert.equal(source.seen.at(-1)!.certIds[0]!.serial, '7');
  });

  it('maps each error of the chain to its OCSP status in a 200', async () => {
    for (const [serial, status] of [[0x11, 'malformedRequest'], [0x66, 'unauthorized'], [0x33, 'tryLater'], [0x99, 'internalError']] as const) {
      const r = await post('/', buildRequest({ serials: [serial] }));
      assert.equal(r.status, 200);
      assert.deepEqual(await bytes(r), ERROR_RESPONSES[status], status);
    }
  });

  it('answers tryLater when the source does not answer within responseTimeout', async () => {
    const started = Date.now();
    const r = await post('/', buildRequest({ serials: [0x77] }));
    assert.deepEqual(await bytes(r), ERROR_RESPONSES.tryLater);
    assert.ok(Date.now() - started < 1000, 'answered at the deadline (plus at most a sweep), not when the source finished');
  });

  it('answers unparsable bodies and GET paths with malformedRequest', async () => {
    for (const body of [Buffer.alloc(0), Buffer.from('garbage'), buildRequest().subarray(0, 10)]) {
      const r = await post('/', body);
      assert.deepEqual(await bytes(r), ERROR_RESPONSES.malformedRequest);
    }
    const r = await fetch(base + '/ocsp/not*base64', { signal: AbortSignal.timeout(5000) });
    assert.equal(r.status, 200);
    assert.deepEqual(await bytes(r), ERROR_RESPONSES.malformedRequest);
  });

  it('refuses bodies over the limit with 413, wrong content types with 415, other methods with 405', async () => {
    const big = await post('/', Buffer.alloc(5000, 0x30));
    assert.equal(big.status, 413);
    assert.deepEqual(await bytes(big), ERROR_RESPONSES.malformedRequest);
    const wrongType = await post('/', buildRequest(), 'text/plain');
    assert.equal(wrongType.status, 415);
    assert.match(wrongType.headers.get('x-ocsp-error') ?? '', /application\/ocsp-request/);
    const put = await fetch(base + '/', { method: 'PUT', body: 'x', signal: AbortSignal.timeout(5000) });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get('allow'), 'GET, HEAD, POST');
    const elsewhere = await post('/somewhere', buildRequest());
    assert.equal(elsewhere.status, 404);
  });

  it('serves /healthz, and /readyz following readiness', async () => {
    const r = await fetch(base + '/healthz', { signal: AbortSignal.timeout(5000) });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'ok\n');
    assert.equal((await fetch(base + '/readyz', { signal: AbortSignal.timeout(5000) })).status, 200);
    readiness = false;
    assert.equal((await fetch(base + '/readyz', { signal: AbortSignal.timeout(5000) })).status, 503);
    readiness = true;
  });

  it('passes a live context with the client (behind a trusted proxy: the X-Forwarded-For hop) and a deadline', async () => {
    await post('/', buildRequest({ serials: [0x42] }));
    assert.equal(source.contexts.at(-1)!.lane, 'live');
    assert.equal(source.contexts.at(-1)!.client, '127.0.0.1');
    assert.ok(source.contexts.at(-1)!.deadlineMs! > systemClock.monotonicMs());
    await fetch(base + '/', { method: 'POST', body: buildRequest({ serials: [0x43] }), signal: AbortSignal.timeout(5000),
      headers: { 'content-type': 'application/ocsp-request', 'x-forwarded-for': '203.0.113.9, 198.51.100.7' } });
    assert.equal(source.contexts.at(-1)!.client, '198.51.100.7', 'rightmost untrusted hop');
  });
});

/** Holds answers in "memory" per serial, as the memory cache does; counts how often it is asked. */
class HotSource implements Source<OcspRequest> {
  held = new Map<string, Buffer>();
  hotCalls = 0;
  responseCalls = 0;
  hot(req: OcspRequest): HotAnswer {
    this.hotCalls++;
    const serial = req.certIds[0]!.serial;
    return {
      served: () => {
        const der = this.held.get(serial);
        return der && { der, thisUpdateMs: 0, ...hourLeft(), maxAgeMs: undefined, etag: () => '"x"' };
      },
    };
  }
  async response(req: OcspRequest) {
    this.responseCalls++;
    const t = new Date();
    return { der: Buffer.from(`slow ${req.certIds[0]!.serial}`), producedAt: t, thisUpdate: t };
  }
}

describe('HTTP edge: answers remembered by request bytes', () => {
  let server: Server;
  let base: string;
  const source = new HotSource();

  before(async () => {
    const ocsp = createOcspHandler({
      source, limits: { maxCertIds: 5 }, bodyLimit: 4096, responseTimeoutMs: 1000, logger: pino({ level: 'silent' }),
      clock: systemClock, trustedProxies: trustedProxyList([]), memo: new RequestMemo(1 << 20),
    });
    server = createHttpServer(ocsp, createApp({ ready: async () => true, logger: pino({ level: 'silent' }) }));
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const get = async (der: Buffer) => Buffer.from(await (await fetch(`${base}/${encodeURIComponent(der.toString('base64'))}`, { signal: AbortSignal.timeout(5000) })).arrayBuffer());
  const post = async (der: Buffer, type = 'application/ocsp-request') => {
    const r = await fetch(base + '/', { method: 'POST', body: der, headers: { 'Content-Type': type }, signal: AbortSignal.timeout(5000) });
    return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
  };

  it('a repeated GET or POST is answered without parsing or asking the chain, and re-asks the answer each time', async () => {
    source.held.set('10', Buffer.from('hot 10 v1'));
    const der = buildRequest({ serials: [0x10] });
    assert.equal((await get(der)).toString(), 'hot 10 v1');
    assert.equal(source.hotCalls, 1);
    assert.equal((await get(der)).toString(), 'hot 10 v1');
    assert.equal((await post(der)).body.toString(), 'hot 10 v1');
    assert.equal((await post(der)).body.toString(), 'hot 10 v1');
    assert.equal(source.hotCalls, 2, 'once for the GET URL, once for the POST body: then remembered');
    // The cache replaced the answer (a revocation was applied): the remembered answer serves the new one.
    source.held.set('10', Buffer.from('hot 10 v2'));
    assert.equal((await get(der)).toString(), 'hot 10 v2');
    // The cache no longer holds it (change pending, expired or evicted): the full path answers.
    source.held.delete('10');
    assert.equal((await get(der)).toString(), 'slow 10');
    assert.equal((await post(der)).body.toString(), 'slow 10');
    assert.equal(source.responseCalls, 2);
  });

  it('requests with a nonce are never remembered, and a different request is never answered with a remembered one', async () => {
    source.held.set('20', Buffer.from('hot 20'));
    const before = source.hotCalls;
    for (const nonce of ['0410' + '11'.repeat(16), '0410' + '22'.repeat(16)]) {
      const der = buildRequest({ serials: [0x20], nonceExtnValue: Buffer.from(nonce, 'hex') });
      assert.equal((await post(der)).body.toString(), 'hot 20');
      assert.equal((await post(der)).body.toString(), 'hot 20');
    }
    assert.equal(source.hotCalls - before, 4, 'every request with a nonce went through the chain');
    source.held.set('21', Buffer.from('hot 21'));
    assert.equal((await post(buildRequest({ serials: [0x21] }))).body.toString(), 'hot 21');
  });

  it('reads Content-Type whatever its case and parameters; a wrong type is still refused before any lookup', async () => {
    source.held.set('30', Buffer.from('hot 30'));
    const der = buildRequest({ serials: [0x30] });
    assert.equal((await post(der, 'Application/OCSP-Request; charset=binary')).body.toString(), 'hot 30');
    assert.equal((await post(der)).status, 200);
    assert.equal((await post(der, 'text/plain')).status, 415, 'remembered bytes do not skip the Content-Type check');
  });
});

describe('HTTP edge: answers given without waiting, counted by the step that gave them', () => {
  it('a store read answered in the tick counts as source="store", a cached one as source="cache"', async () => {
    const registry = new Registry();
    const from = new Map<string, 'store' | undefined>([['40', 'store'], ['41', undefined]]);
    const source: Source<OcspRequest> = {
      hot: (req) => {
        const serial = req.certIds[0]!.serial;
        const der = Buffer.from(`hot ${serial}`);
        const served = () => ({ der, thisUpdateMs: 0, ...hourLeft(), maxAgeMs: undefined, etag: () => '"x"' });
        const s = from.get(serial);
        return s ? { served, source: s } : { served };
      },
      response: () => Promise.reject(new Error('not asked: every answer here is given without waiting')),
    };
    const ocsp = createOcspHandler({
      source, limits: { maxCertIds: 5 }, bodyLimit: 4096, responseTimeoutMs: 1000, logger: pino({ level: 'silent' }),
      clock: systemClock, trustedProxies: trustedProxyList([]), httpMetrics: new HttpMetrics(registry, systemClock),
    });
    const server = createHttpServer(ocsp, createApp({ ready: async () => true, logger: pino({ level: 'silent' }) }));
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      for (const serial of [0x40, 0x40, 0x41]) {
        const der = buildRequest({ serials: [serial] });
        const r = await fetch(`${base}/${encodeURIComponent(der.toString('base64'))}`, { signal: AbortSignal.timeout(5000) });
        assert.equal(Buffer.from(await r.arrayBuffer()).toString(), `hot ${serial.toString(16)}`);
      }
      const text = await registry.metrics();
      assert.match(text, /ocsp_requests_total\{method="GET",status="successful",source="store"\} 2\n/);
      assert.match(text, /ocsp_requests_total\{method="GET",status="successful",source="cache"\} 1\n/);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
