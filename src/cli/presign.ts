// `ocsp-hsm presign` and `ocsp-hsm cleanup`: the pre-signer and the cleanup job run once, on demand.
import pino from 'pino';
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import { HsmMetrics } from '../metrics/hsm-metrics';
import { createRegistry } from '../metrics/registry';
import { cleanup } from '../presign/cleanup';
import { PreSigner, Progress } from '../presign/pre-signer';
import { ResponseProducer } from '../source/response-producer';
import { openSigning } from './signing';
import { openStore } from './store';

export interface PresignContext {
  loaded: LoadedConfig;
  clock: Clock;
  out: (line: string) => void;
}

export async function presign(ctx: PresignContext, o: { ca?: string; all?: boolean }): Promise<void> {
  const { loaded, clock } = ctx;
  const logger = pino({ level: 'warn', base: { service: 'ocsp-hsm' } }, pino.destination(2));
  const store = await openStore(loaded, clock);
  const signing = (() => {
    try {
      return openSigning(loaded, { logger, clock, presignOnly: true }, new HsmMetrics(createRegistry()));
    } catch (e) {
      void store.close();
      throw e;
    }
  })();
  try {
    // One-shot: every token must be up now, waitForToken or not.
    for (const t of signing.tokens.values()) await t.activate();
    await signing.issuerRevocations.refresh(store);
    const cas = o.ca?.split(',').map((s) => s.trim()).filter(Boolean);
    const preSigner = new PreSigner(store, signing.authorities, new ResponseProducer(clock, store), clock, loaded.config.preSigner, logger);
    const bar = progressBar(clock);
    const r = await preSigner.run({ ...(cas ? { cas } : {}), all: !!o.all, onProgress: bar.update });
    bar.finish(r);
    ctx.out(
      `presign: ${r.stored} responses stored (${r.final} final), ${r.skippedFinal} skipped (final response exists), ` +
        `${r.stale} not stored (status changed while signing), ${r.failed} failed` +
        ` in ${((clock.monotonicMs() - bar.startMs) / 1000).toFixed(1)} s`,
    );
    if (r.failed > 0) throw new Error(`${r.failed} signatures failed; first: ${r.firstError}`);
  } finally {
    await signing.close();
    await store.close();
  }
}

export async function runCleanup(ctx: PresignContext): Promise<void> {
  const store = await openStore(ctx.loaded, ctx.clock);
  try {
    const r = await cleanup(store, ctx.clock);
    ctx.out(`cleanup: ${r.responses} superseded responses removed, ${r.changes} old change records removed`);
  } finally {
    await store.close();
  }
}

/** A progress bar with rate and ETA on a terminal; a line every 5 s otherwise (logs, CI). */
function progressBar(clock: Clock) {
  const startMs = clock.monotonicMs();
  const tty = process.stderr.isTTY === true;
  let lastLine = 0;
  const render = (p: Progress) => {
    const elapsed = (clock.monotonicMs() - startMs) / 1000;
    const rate = elapsed > 0 ? p.done / elapsed : 0;
    const eta = rate > 0 ? Math.ceil((p.total - p.done) / rate) : undefined;
    const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
    const width = 30;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    return `[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${p.done}/${p.total} ${rate.toFixed(0)}/s ETA ${eta === undefined ? '?' : `${eta}s`}${p.failed ? ` failed ${p.failed}` : ''}`;
  };
  return {
    startMs,
    update: (p: Progress) => {
      const now = clock.monotonicMs();
      if (tty) process.stderr.write(`\r${render(p)}`);
      else if (now - lastLine >= 5000) {
        lastLine = now;
        process.stderr.write(`${render(p)}\n`);
      }
    },
    finish: (p: Progress) => process.stderr.write(`${tty ? '\r' : ''}${render(p)}\n`),
  };
}
