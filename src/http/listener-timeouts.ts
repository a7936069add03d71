// The timeouts every listener of the daemon gets (OCSP, metrics, publishing API), held to within a quarter second.
import type { ServerOptions } from 'node:http';

/**
 * How often node looks for requests past their timeouts. Its default, 30 s, let a request declared at
 * `requestTimeout: 10s` live 12 to 39 s; at 250 ms a late drop is at most that (plus event-loop delay), and the
 * check is a walk over the open connections in C++.
 */
export const TIMEOUT_CHECK_INTERVAL_MS = 250;

export interface ListenerTimeouts {
  /** A request not fully received (headers and body) this long after its first byte is dropped (408). */
  requestTimeoutMs: number;
  /** A request whose headers are not all in by then is dropped; also bounds a connection that sends nothing. */
  headersTimeoutMs?: number | undefined;
}

export function listenerOptions(t: ListenerTimeouts): ServerOptions {
  return {
    requestTimeout: t.requestTimeoutMs,
    // node refuses a header timeout above the request timeout (config check says so first).
    headersTimeout: Math.min(t.headersTimeoutMs ?? t.requestTimeoutMs, t.requestTimeoutMs),
    connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
  };
}
