// Sends OCSP requests over a fixed number of keep-alive connections for a fixed time, each bounded by a timeout.
import * as http from 'node:http';
import * as https from 'node:https';
import type { Clock } from '../clock';
import type { BuiltRequest } from './request-builder';

export type Method = 'GET' | 'POST';

export interface LoadOptions {
  url: URL;
  method: Method;
  connections: number;
  durationMs: number;
  /** One request, from sending to the last byte of the answer. */
  timeoutMs: number;
  clock: Clock;
  /** The next request to send. */
  next: () => BuiltRequest;
  /** Called once per request sent, in completion order. */
  onExchange: (e: Exchange) => void;
}

export interface Exchange {
  request: BuiltRequest;
  latencyMs: number;
  /** Set when an HTTP answer arrived in full. */
  httpStatus?: number;
  body?: Buffer;
  /** Set when none did: "timeout", "response too large", or the socket error code (ECONNREFUSED, ...). */
  error?: string;
}

// A real OCSP response is a few KiB; anything far beyond is not one and is not read to the end.
const MAX_BODY = 1024 * 1024;
// After a failed connection a worker waits this long: a responder that is down is not hammered in a tight loop.
const PAUSE_AFTER_ERROR_MS = 50;

/** Resolves once every worker has stopped: the duration is over and its last request answered or timed out. */
export async function runLoad(o: LoadOptions): Promise<{ elapsedMs: number }> {
  const transport = o.url.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets: o.connections });
  const started = o.clock.monotonicMs();
  const end = started + o.durationMs;
  const worker = async () => {
    while (o.clock.monotonicMs() < end) {
      const e = await exchange(o, transport, agent, o.next());
      o.onExchange(e);
      if (e.error) await new Promise<void>((r) => o.clock.setTimer(r, PAUSE_AFTER_ERROR_MS));
    }
  };
  try {
    await Promise.all(Array.from({ length: o.connections }, worker));
  } finally {
    agent.destroy();
  }
  return { elapsedMs: o.clock.monotonicMs() - started };
}

/** RFC 6960 Appendix A.1: GET {url}/{url-encoding of base-64 encoding of the DER request}. */
export function getPath(url: URL, der: Buffer): string {
  return url.pathname.replace(/\/$/, '') + '/' + encodeURIComponent(der.toString('base64'));
}

function exchange(o: LoadOptions, transport: typeof http | typeof https, agent: http.Agent, req: BuiltRequest): Promise<Exchange> {
  const t0 = o.clock.monotonicMs();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (e: Omit<Exchange, 'request' | 'latencyMs'>) => {
      if (settled) return;
      settled = true;
      timer.cancel();
      resolve({ request: req, latencyMs: o.clock.monotonicMs() - t0, ...e });
    };
    const post = o.method === 'POST';
    const r = transport.request(
      {
        protocol: o.url.protocol,
        hostname: o.url.hostname,
        port: o.url.port,
        method: o.method,
        path: post ? o.url.pathname + o.url.search : getPath(o.url, req.der),
        agent,
        headers: post ? { 'Content-Type': 'application/ocsp-request', 'Content-Length': req.der.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) r.destroy(new BenchError('response too large'));
          else chunks.push(c);
        });
        res.on('end', () => finish({ httpStatus: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', (e) => finish({ error: describe(e) }));
      },
    );
    const timer = o.clock.setTimer(() => r.destroy(new BenchError('timeout')), o.timeoutMs);
    r.on('error', (e) => finish({ error: describe(e) }));
    r.end(post ? req.der : undefined);
  });
}

class BenchError extends Error {
  override name = 'BenchError';
}

function describe(e: Error): string {
  if (e instanceof BenchError) return e.message;
  return (e as NodeJS.ErrnoException).code ?? e.message;
}
