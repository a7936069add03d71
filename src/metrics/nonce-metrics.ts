// Requests with a nonce for CAs with preProduction.nonce: whenIdle, by outcome: signed live with the nonce echoed, or
// answered with the pre-produced response (no permit free at once). A falling share signed means strict clients fail.
import { Counter, Registry } from 'prom-client';
import type { NonceOutcome } from '../source/nonce-signing';

export interface NonceStats {
  readonly stats: Readonly<Record<NonceOutcome, number>>;
}

export function registerNonceMetrics(registry: Registry, nonces: NonceStats): void {
  const reported: Record<NonceOutcome, number> = { signed: 0, preproduced: 0 };
  const counter = new Counter({
    name: 'ocsp_nonce_requests_total',
    help: 'Requests with a nonce for a CA with preProduction.nonce whenIdle: signed (nonce echoed) or preproduced (no permit free at once).',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      // Counted in plain numbers on the request path; handed over at scrape time. A reload starts them from 0 again.
      for (const outcome of ['signed', 'preproduced'] as const) {
        const n = nonces.stats[outcome];
        if (n > reported[outcome]) this.inc({ outcome }, n - reported[outcome]);
        reported[outcome] = n;
      }
    },
  });
  for (const outcome of ['signed', 'preproduced'] as const) counter.inc({ outcome }, 0);
}
