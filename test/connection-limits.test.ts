// Connection bounds on a real node:http server on 127.0.0.1: per peer address (load balancers exempt), the total
// with the connection idle longest closed to make room, never one whose request is being answered; counted.
import assert from 'node:assert/strict';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo, connect, Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { trustedProxyList } from '../src/http/client-address';
import { ConnectionLimits } from '../src/http/connection-limits';
import { ConnectionMetrics } from '../src/metrics/connection-metrics';

interface Peer {
  socket: Socket;
  closed: boolean;
  /** Everything the server sent. */
  received: string;
}

/** Polls (bounded) until `ok` holds. */
async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(ok(), what);
}

describe('connection limits', () => {
  let server: Server;
  let peers: Peer[] = [];
  /** Requests to /hold wait here for their answer. */
  let held: ServerResponse[] = [];

  async function start(bounds: { maxConnections: number; maxPerClient: number; exempt?: string[] }) {
    const registry = new Registry();
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/hold') held.push(res);
      else res.end('ok');
    });
    const limits: ConnectionLimits = new ConnectionLimits(
      { maxConnections: bounds.maxConnections, maxPerClient: bounds.maxPerClient, exempt: trustedProxyList(bounds.exempt ?? []) },
      new ConnectionMetrics(registry, () => limits.size),
    );
    limits.attach(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const counts = async () => {
      const json = await registry.getMetricsAsJSON();
      const out: Record<string, number> = {};
      for (const m of json) for (const v of m.values) out[m.name + (v.labels.result ? `{${v.labels.result}}` : '')] = v.value;
      return out;
    };
    /** A connection from `from`, once the server has decided about it (counted accepted or refused). */
    const open = async (from: string): Promise<Peer> => {
      const before = await counts();
      const decided = (c: Record<string, number>) =>
        ['accepted', 'refused_per_client', 'refused_limit'].reduce((n, r) => n + (c[`ocsp_connections_total{${r}}`]! - before[`ocsp_connections_total{${r}}`]!), 0);
      const socket = connect({ port, host: '127.0.0.1', localAddress: from });
      const peer: Peer = { socket, closed: false, received: '' };
      socket.on('data', (d) => (peer.received += d));
      socket.on('error', () => undefined);
      socket.on('close', () => (peer.closed = true));
      peers.push(peer);
      let done = false;
      for (let i = 0; i < 400 && !done; i++) {
        done = decided(await counts()) === 1;
        if (!done) await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(done, `the server decided about a connection from ${from}`);
      return peer;
    };
    return { limits, counts, open };
  }

  afterEach(async () => {
    for (const res of held) res.end();
    held = [];
    for (const p of peers) p.socket.destroy();
    peers = [];
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('closes a new connection at once past its address\'s bound; other addresses still get in', async () => {
    const { limits, counts, open } = await start({ maxConnections: 100, maxPerClient: 3 });
    const flood: Peer[] = [];
    for (let i = 0; i < 5; i++) flood.push(await open('127.0.0.2'));
    const other = await open('127.0.0.3');
    await until('the two past the bound are closed', () => flood.filter((p) => p.closed).length === 2);
    assert.deepEqual(flood.map((p) => p.closed), [false, false, false, true, true]);
    assert.equal(other.closed, false);
    assert.equal(limits.size, 4);
    const c = await counts();
    assert.equal(c['ocsp_connections_total{accepted}'], 4);
    assert.equal(c['ocsp_connections_total{refused_per_client}'], 2);
    assert.equal(c['ocsp_connections_total{refused_limit}'], 0);
    assert.equal(c.ocsp_connections_open, 4);
    // One closes: its address may open another.
    flood[0]!.socket.destroy();
    await until('counted out', () => limits.size === 3);
    assert.equal((await open('127.0.0.2')).closed, false);
  });

  it('never bounds a trusted proxy per address (its connections carry many clients); the total still holds', async () => {
    const { limits, counts, open } = await start({ maxConnections: 4, maxPerClient: 1, exempt: ['127.0.0.2'] });
    for (let i = 0; i < 4; i++) await open('127.0.0.2');
    assert.equal(limits.size, 4);
    assert.equal((await counts())['ocsp_connections_total{refused_per_client}'], 0);
  });

  it('at the total bound, closes the connection idle longest to make room, not the new one', async () => {
    const { limits, counts, open } = await start({ maxConnections: 3, maxPerClient: 0 });
    const [a, b, c] = [await open('127.0.0.2'), await open('127.0.0.3'), await open('127.0.0.4')];
    // a asks (keep-alive) and is answered: it was active more recently than b and c, which never sent a byte.
    a.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await until('a answered', () => a.received.includes('ok'));
    const d = await open('127.0.0.5');
    await until('b closed', () => b.closed);
    assert.equal(a.closed || c.closed || d.closed, false);
    const e = await open('127.0.0.6');
    await until('c closed', () => c.closed);
    assert.equal(a.closed || d.closed || e.closed, false);
    assert.equal(limits.size, 3);
    const n = await counts();
    assert.equal(n.ocsp_connections_evicted_total, 2);
    assert.equal(n['ocsp_connections_total{accepted}'], 5);
    assert.equal(n['ocsp_connections_total{refused_limit}'], 0);
  });

  it('never closes a connection whose request is being answered; with none idle the new one is refused', async () => {
    const { limits, counts, open } = await start({ maxConnections: 2, maxPerClient: 0 });
    const busy = await open('127.0.0.2');
    busy.socket.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
    await until('the request is held', () => held.length === 1);
    const idle = await open('127.0.0.3');
    const newer = await open('127.0.0.4');
    await until('the idle one made room', () => idle.closed);
    assert.equal(busy.closed || newer.closed, false, 'the busy one, older, stays');
    newer.socket.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
    await until('both held', () => held.length === 2);
    const refused = await open('127.0.0.5');
    await until('refused', () => refused.closed);
    assert.equal(busy.closed || newer.closed, false);
    for (const res of held) res.end('done');
    await until('answers delivered', () => busy.received.includes('done') && newer.received.includes('done'));
    assert.equal(limits.size, 2);
    const n = await counts();
    assert.equal(n['ocsp_connections_total{refused_limit}'], 1);
    assert.equal(n.ocsp_connections_evicted_total, 1);
  });
});
