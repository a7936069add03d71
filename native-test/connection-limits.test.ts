// Connection limits that hold, on the daemon: stalled requests dropped within a second of server.requestTimeout,
// and 2,000 idle connections (one address, then eight) never open more than server.maxConnections while openssl,
// from another address, is still answered. Only 127.0.0.0/8; every loop and wait bounded.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createTestPki, metric, publishingPort, Responder, startResponder, TestCa, TestPki, variantConfig, waitFor } from './support/harness';

const REQUEST_TIMEOUT_MS = 2000;
const MAX_CONNECTIONS = 500;
const MAX_PER_CLIENT = 400;
const FLOOD = 2000;
const TOKEN = 'connection-limits-test-token-0123456789';
/** Connections being opened at once by the flood. */
const CONNECTS_IN_FLIGHT = 100;

/** Open files this process may hold (node raises the soft limit to the hard one at startup). */
function openFileLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** A raw connection from `from`, resolved once connected (or failed); `closedAt` set when the server closes it. */
function rawConnection(port: number, from: string): Promise<{ socket: Socket; closed: Promise<number> }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: from });
    // Read what the server sends (a 408), or its close goes unnoticed here.
    socket.resume();
    socket.on('error', () => undefined);
    const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now())));
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('close', () => resolve({ socket, closed }));
  });
}

/** `n` connections spread over `addresses` in turn, at most CONNECTS_IN_FLIGHT being opened at once. */
async function flood(port: number, addresses: string[], n: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < n; i += CONNECTS_IN_FLIGHT) {
    const batch = Array.from({ length: Math.min(CONNECTS_IN_FLIGHT, n - i) }, (_, j) => rawConnection(port, addresses[(i + j) % addresses.length]!));
    for (const c of await Promise.all(batch)) sockets.push(c.socket);
  }
  return sockets;
}

/** openssl ocsp, without blocking this process (its sampler keeps running). */
function opensslAsk(ca: TestCa, url: string): Promise<string> {
  const args = ['ocsp', '-issuer', ca.caCertFile, '-CAfile', ca.caCertFile, '-cert', ca.good.file, '-url', url, '-timeout', '10'];
  return new Promise((resolve) => execFile('openssl', args, { timeout: 30_000 }, (_, stdout, stderr) => resolve(`${stdout}${stderr}`)));
}

describe('connection limits on the daemon', () => {
  let pki: TestPki;
  let responder: Responder;
  let metricsUrl: string;
  let metricsPort: number;
  const held: Socket[] = [];

  before(async () => {
    pki = createTestPki([{ name: 'limits', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    const config = variantConfig(pki, 'limits', (c) => {
      c.server = { ...c.server, requestTimeout: `${REQUEST_TIMEOUT_MS / 1000}s`, maxConnections: MAX_CONNECTIONS, maxConnectionsPerClient: MAX_PER_CLIENT };
      // Scrapes on a listener of their own: on the OCSP port they would be connections under the bound too.
      c.metrics = { host: '127.0.0.1', port: 0 };
      // The publishing API keeps the same timeouts.
      c.publishing = { host: '127.0.0.1', port: 0, auth: { tokenFile: 'publish.token' } };
    });
    writeFileSync(join(pki.dir, 'publish.token'), TOKEN + '\n', { mode: 0o600 });
    responder = await startResponder(pki, { config });
    const m = /"port":(\d+),"msg":"metrics listening"/.exec(responder.output());
    assert.ok(m, responder.output());
    metricsPort = Number(m[1]);
    metricsUrl = `http://127.0.0.1:${metricsPort}`;
  });
  after(async () => {
    for (const s of held) s.destroy();
    assert.equal(await responder.stop(), 0, responder.output());
  });

  const openNow = () => metric(metricsUrl, 'ocsp_connections_open');
  const counts = async () => ({
    accepted: await metric(metricsUrl, 'ocsp_connections_total{result="accepted"}'),
    perClient: await metric(metricsUrl, 'ocsp_connections_total{result="refused_per_client"}'),
    limit: await metric(metricsUrl, 'ocsp_connections_total{result="refused_limit"}'),
    evicted: await metric(metricsUrl, 'ocsp_connections_evicted_total'),
  });

  it(`drops stalled requests within 1 s of requestTimeout (${REQUEST_TIMEOUT_MS} ms): a body, headers, a silent connection; metrics and publishing too`, async (t) => {
    // Timed from before connecting: node's clock for the request starts when the connection is accepted.
    const started = performance.now();
    const body = (path: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\nContent-Length: 60000\r\n\r\n` + 'x'.repeat(100);
    const ocsp = responder.port;
    const stalls: [number, string][] = [
      [ocsp, body('/')], [ocsp, body('/')], [ocsp, body('/')],
      [ocsp, 'GET /ocsp/MEIwQDA HTTP/1.1\r\nHost: x\r\nX-Slow: '],
      [ocsp, ''],
      [metricsPort, 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: '],
      [publishingPort(responder), body('/v1/cas/limits/certificates').replace('application/ocsp-request', `application/json\r\nAuthorization: Bearer ${TOKEN}`)],
    ];
    const conns = await Promise.all(stalls.map(async ([port, bytes]) => {
      const c = await rawConnection(port, '127.0.0.1');
      if (bytes) c.socket.write(bytes);
      return c;
    }));
    const after = await Promise.all(conns.map(async (c) => (await Promise.race([c.closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 10_000))])) - started));
    t.diagnostic(`closed after ${after.map((ms) => Math.round(ms)).join(', ')} ms`);
    for (const [i, ms] of after.entries()) {
      assert.ok(ms >= REQUEST_TIMEOUT_MS && ms < REQUEST_TIMEOUT_MS + 1000, `stall ${i} closed after ${Math.round(ms)} ms`);
    }
  });

  it(`${FLOOD} idle connections from one address: it holds at most ${MAX_PER_CLIENT}, the rest are closed at once; openssl from another is answered`, async (t) => {
    await bounded(t, async (n) => {
      const before = await counts();
      const { peak, sockets } = await sampling(() => flood(responder.port, ['127.0.0.2'], n), openNow);
      held.push(...sockets);
      assert.ok(await waitFor(async () => decided(before, await counts()) === n, 10_000), 'the daemon decided about every connection');
      const out = await opensslAsk(pki.cas[0]!, responder.url);
      assert.match(out, /Response verify OK/);
      assert.match(out, /: good/);
      const c = await counts();
      t.diagnostic(`peak open ${peak}; accepted ${c.accepted - before.accepted}, refused per client ${c.perClient - before.perClient}`);
      assert.ok(peak <= MAX_PER_CLIENT, `peak ${peak}`);
      assert.ok(c.perClient - before.perClient >= n - 2 * MAX_PER_CLIENT, 'refused past the address\'s bound (a connection reaped at the timeout makes room for one more)');
      assert.equal(c.limit - before.limit, 0);
    });
  });

  it(`${FLOOD} idle connections from eight addresses: never more than ${MAX_CONNECTIONS} open, idle ones make room; openssl is answered`, async (t) => {
    await bounded(t, async (n) => {
      const before = await counts();
      const addresses = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 3}`);
      const { peak, sockets } = await sampling(() => flood(responder.port, addresses, n), openNow);
      held.push(...sockets);
      assert.ok(await waitFor(async () => decided(before, await counts()) === n, 10_000), 'the daemon decided about every connection');
      const out = await opensslAsk(pki.cas[0]!, responder.url);
      assert.match(out, /Response verify OK/);
      assert.match(out, /: good/);
      const c = await counts();
      t.diagnostic(`peak open ${peak}; accepted ${c.accepted - before.accepted}, evicted ${c.evicted - before.evicted}, refused ${c.limit - before.limit}`);
      assert.ok(peak <= MAX_CONNECTIONS, `peak ${peak}`);
      assert.ok(peak >= MAX_CONNECTIONS - 50, `the flood reached the bound (peak ${peak})`);
      assert.ok(c.evicted - before.evicted >= n - MAX_CONNECTIONS - 2 * MAX_CONNECTIONS, 'idle connections made room');
      assert.equal(c.perClient - before.perClient, 0, '250 per address stays under the address bound');
    });
  });

  /** Runs `body` with as many flood connections as this process may open (2,000 here), after the last flood is reaped. */
  async function bounded(t: { diagnostic(m: string): void }, body: (n: number) => Promise<void>): Promise<void> {
    const n = Math.min(FLOOD, openFileLimit() - 500);
    assert.ok(n >= 1000, `ulimit -n allows too few connections for this test (${openFileLimit()})`);
    if (n < FLOOD) t.diagnostic(`flood of ${n} connections (open file limit ${openFileLimit()})`);
    for (const s of held.splice(0)) s.destroy();
    assert.ok(await waitFor(async () => (await openNow()) === 0, 10_000), 'the previous flood is gone');
    await body(n);
  }
});

/** New connections the daemon decided about between two readings of its counters. */
function decided(a: { accepted: number; perClient: number; limit: number }, b: { accepted: number; perClient: number; limit: number }): number {
  return b.accepted - a.accepted + b.perClient - a.perClient + b.limit - a.limit;
}

/** Runs `work` while reading `open` every 20 ms; returns its result and the highest reading. */
async function sampling<T>(work: () => Promise<T>, open: () => Promise<number>): Promise<{ peak: number; sockets: T }> {
  let peak = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await open());
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    const sockets = await work();
    // Until the daemon has caught up with the flood's last connections.
    await new Promise((r) => setTimeout(r, 200));
    return { peak, sockets };
  } finally {
    running = false;
    await sampler;
  }
}
