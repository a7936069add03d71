// Fuzz target: the OCSP edge as a whole. The daemon's HTTP server, handler and source chain (issuer filter, memory
// cache, store, live signer) on an in-memory SQLite store and the committed test PKI's responder key, sent mutated
// exchanges over 127.0.0.1. Every answer to an OCSP route is an OCSPResponse: an error status is the RFC's fixed
// response (RFC 6960 section 4.2.1: no responseBytes) for what the request deserves, never internalError; a
// successful one is read by pyca/cryptography, signed by the responder, and answers each CertID asked.
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { systemClock } from '../../../src/clock';
import { createApp, OPERATIONAL_PATHS } from '../../../src/http/app';
import { trustedProxyList } from '../../../src/http/client-address';
import { decodeGetPath } from '../../../src/http/get-path';
import { createOcspHandler } from '../../../src/http/ocsp-handler';
import { RequestMemo } from '../../../src/http/request-memo';
import { createHttpServer } from '../../../src/http/server';
import { HttpMetrics } from '../../../src/metrics/http-metrics';
import { MalformedRequestError } from '../../../src/ocsp/errors';
import type { HashName } from '../../../src/ocsp/oids';
import { parseOcspRequest, OcspRequest } from '../../../src/ocsp/request';
import { ERROR_RESPONSES, ErrorStatusName } from '../../../src/ocsp/status-responses';
import { issuerHashes, LoadedCertificate, readCertificate } from '../../../src/pki/certificate';
import { makeAuthority } from '../../../src/source/authority';
import type { ChangeFollower } from '../../../src/source/change-follower';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store';
import { KeyObjectSigner } from '../../support/key-signer';
import { buildChain } from '../../support/serving-chain';
import { FUZZ_DIR, FuzzTarget } from '../fuzz-target';
import { Answer, Exchange, exchanges, send, sendable } from './http-exchange';
import { LIMITS } from './ocsp-request';
import { PycaReader, PycaSingle } from './pyca-reader';

const PREFIX = '/ocsp';
const BODY_LIMIT = 64 * 1024;
/** What the store holds; every other serial is answered unknown (nonIssued: unknown). */
const STATUSES: Record<string, PycaSingle['status']> = { '1002': 'GOOD', '1003': 'REVOKED', '1004': 'GOOD', '1005': 'REVOKED' };

interface Edge {
  server: Server;
  agent: Agent;
  port: number;
  store: SqliteStore;
  pyca: PycaReader;
  ca: LoadedCertificate;
  follower: ChangeFollower;
}
let edge: Edge | undefined;

async function start(): Promise<void> {
  const pki = (f: string) => join(FUZZ_DIR, 'pki', f);
  const ca = readCertificate(pki('ca.pem'));
  const responder = readCertificate(pki('responder.pem'));
  const signer = new KeyObjectSigner(createPrivateKey(readFileSync(pki('responder.key'))), responder.x509.publicKey);
  const store = new SqliteStore(':memory:', systemClock);
  const revokedAt = new Date('2026-01-01T00:00:00Z');
  await store.putCertificates(Object.entries(STATUSES).map(([serial, s]) =>
    s === 'GOOD' ? { ca: 'fuzz', serial, status: 'good' as const } : { ca: 'fuzz', serial, status: 'revoked' as const, revokedAt, reason: 'keyCompromise' as const }));
  const authority = makeAuthority({ name: 'fuzz', caCert: ca, signerCert: responder, signer, responderId: 'byKey', validityMs: 3_600_000 });
  const { chain, follower } = buildChain(store, authority, systemClock);
  await follower.start();
  const logger = pino({ level: 'silent' });
  // As the daemon wires it by default: metrics on the OCSP port, the request memo beside the cache.
  const registry = new Registry();
  const handler = createOcspHandler({
    source: chain, clock: systemClock, trustedProxies: trustedProxyList(['127.0.0.1']), limits: LIMITS, bodyLimit: BODY_LIMIT,
    pathPrefix: PREFIX, responseTimeoutMs: 5000, memo: new RequestMemo(1 << 20), httpMetrics: new HttpMetrics(registry, systemClock), logger,
  });
  const server = createHttpServer(handler, createApp({ ready: async () => true, metrics: registry, logger }));
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  edge = {
    server, agent: new Agent({ keepAlive: true, maxSockets: 1 }), port: (server.address() as AddressInfo).port, store,
    pyca: new PycaReader(pki('responder.pem')), ca, follower,
  };
}

async function stop(): Promise<void> {
  if (!edge) return;
  const e = edge;
  edge = undefined;
  e.agent.destroy();
  e.server.closeAllConnections();
  await new Promise((r) => e.server.close(r));
  e.follower.close();
  await e.pyca.close();
  await e.store.close();
}

/** What the exchange deserves: the HTTP status, and the OCSP status with the request when it parses. */
function expected(x: Exchange, ca: LoadedCertificate): { http: number; ocsp: ErrorStatusName | 'successful'; request?: OcspRequest } {
  const method = x.method.toUpperCase();
  const path = x.path.split('?')[0]!;
  if (method !== 'POST' && method !== 'GET' && method !== 'HEAD') return { http: 405, ocsp: 'malformedRequest' };
  let der: Buffer;
  if (method === 'POST') {
    if (!['/', PREFIX, PREFIX + '/'].includes(path)) return { http: 404, ocsp: 'malformedRequest' };
    // The first Content-Type, without the whitespace around it (RFC 9110 section 5.5; node's parser drops it).
    const type = x.headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1].replace(/^[ \t]+|[ \t]+$/g, '');
    if (!/^application\/ocsp-request\s*(;|$)/i.test(type ?? '')) return { http: 415, ocsp: 'malformedRequest' };
    der = Buffer.from(x.body, 'base64');
    if (der.length > BODY_LIMIT) return { http: 413, ocsp: 'malformedRequest' };
  } else {
    try {
      der = decodeGetPath(path === PREFIX || path.startsWith(PREFIX + '/') ? path.slice(PREFIX.length) : path);
    } catch (e) {
      if (e instanceof MalformedRequestError) return { http: 200, ocsp: 'malformedRequest' };
      throw e;
    }
  }
  let request: OcspRequest;
  try {
    request = parseOcspRequest(der, LIMITS);
  } catch (e) {
    if (e instanceof MalformedRequestError) return { http: 200, ocsp: 'malformedRequest' };
    throw e;
  }
  const ours = request.certIds.every((c) => {
    if (!c.hash) return false;
    const h = issuerHashes(ca, c.hash);
    return h.nameHash.equals(c.issuerNameHash) && h.keyHash.equals(c.issuerKeyHash);
  });
  return { http: 200, ocsp: ours ? 'successful' : 'unauthorized', request };
}

async function checkExchange(input: Buffer): Promise<void> {
  const x = JSON.parse(input.toString('utf8')) as Exchange;
  if (!sendable(x)) return;
  const e = edge!;
  const answer = await send(e.agent, e.port, x);
  const method = x.method.toUpperCase();
  const conditional = x.headers.some(([n]) => /^if-(none-match|modified-since)$/i.test(n));
  if ((method === 'GET' || method === 'HEAD') && OPERATIONAL_PATHS.has(x.path.split('?')[0]!)) {
    // Not OCSP: express answers, 304 included (If-None-Match: * matches any representation, RFC 9110 13.1.2).
    assert.ok(answer.status === 200 || (conditional && answer.status === 304), `an operational route answered ${answer.status}`);
    return;
  }
  const want = expected(x, e.ca);
  if (answer.status === 304) {
    assert.ok(conditional && want.ocsp === 'successful' && method !== 'POST', 'a 304 only to a conditional GET of a good answer');
    return void assert.equal(answer.body.length, 0);
  }
  assert.equal(answer.headers['content-type'], 'application/ocsp-response');
  assert.equal(answer.status, want.http, `HTTP status for ${method} ${x.path.slice(0, 80)}`);
  if (method === 'HEAD') return void assert.equal(answer.body.length, 0);
  if (want.ocsp !== 'successful') {
    assert.ok(answer.body.equals(ERROR_RESPONSES[want.ocsp]), `expected ${want.ocsp}, got ${statusName(answer)}`);
    return;
  }
  await checkSuccessful(answer, want.request!, e);
}

async function checkSuccessful(answer: Answer, request: OcspRequest, e: Edge): Promise<void> {
  const py = await e.pyca.read(answer.body);
  if (!py.ok) assert.fail(`pyca/cryptography cannot read the answer: ${py.error} (answer: ${answer.body.toString('base64')})`);
  assert.equal(py.status, 'SUCCESSFUL', `expected successful, got ${statusName(answer)}`);
  const singles = py.responses!;
  assert.equal(singles.length, request.certIds.length, 'one SingleResponse per CertID');
  request.certIds.forEach((c, i) => {
    const s = singles[i]!;
    assert.equal(s.serial, c.serial, 'serial');
    assert.equal(s.hash, c.hash as HashName);
    assert.equal(s.nameHash, c.issuerNameHash.toString('hex'));
    assert.equal(s.keyHash, c.issuerKeyHash.toString('hex'));
    assert.equal(s.status, STATUSES[c.serial] ?? 'UNKNOWN', `status of ${c.serial}`);
  });
  // RFC 9654 section 2.1 (live answers): the nonce is echoed.
  assert.equal(py.nonce ?? undefined, request.nonce ? nonceOctets(request.nonce) : undefined, 'nonce');
}

/** The nonce's octets inside its extnValue OCTET STRING (already checked to be one by the parser). */
function nonceOctets(extnValue: Buffer): string {
  const len = extnValue[1]!;
  const start = len & 0x80 ? 2 + (len & 0x7f) : 2;
  return extnValue.subarray(start).toString('hex');
}

function statusName(a: Answer): string {
  return Object.entries(ERROR_RESPONSES).find(([, der]) => der.equals(a.body))?.[0] ?? `${a.body.length} bytes`;
}

export const ocspHttpTarget: FuzzTarget = {
  name: 'ocsp-http',
  ext: 'json',
  start,
  stop,
  arbitrary: exchanges,
  check: checkExchange,
};
