// `ocsp-hsm serve`: start the daemon, reload it on SIGHUP and stop it cleanly on SIGTERM/SIGINT.
import { setFlagsFromString } from 'node:v8';
import { systemClock } from '../clock';
import type { LoadedConfig } from '../config/load';
import { Daemon, startDaemon } from './daemon';
import { exitCodeFor } from './exit-codes';
import { createLogger } from './logger';

// After a full GC V8 lets the heap grow to up to 4x what survived before collecting again. The daemon's heap is
// mostly its bounded cache, so that slack was the largest part of its RSS: 1.5x keeps a 100 MiB cache's daemon
// under 400 MB (bench/memory.ts). V8 reads this flag at each GC, so setting it at startup takes effect; an
// operator's own `node --heap-growing-percent=N` wins.
const HEAP_GROWING_PERCENT = 50;

// V8 allocates objects directly in the old generation at allocation sites where most objects survived
// (pretenuring). Requests waiting on the store or the HSM survive, so node:http's per-request sites got tenured,
// and from then on every request's objects died in the old generation, keeping their young parts alive across
// scavenges: hot-cache POSTs spent 28 MB/s in promotion and two mark-compacts a second (README, Benchmarks).
// The daemon's long-lived objects (cache entries) are promoted by two scavenges anyway.
const NO_PRETENURING = '--no-allocation-site-pretenuring';

export async function serve(loaded: LoadedConfig, overrides: { port?: number } = {}): Promise<void> {
  if (overrides.port !== undefined) loaded.config.server.port = overrides.port;
  if (!process.execArgv.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) {
    setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  }
  if (!process.execArgv.some((a) => /^--(no-)?allocation[-_]site[-_]pretenuring/.test(a))) setFlagsFromString(NO_PRETENURING);
  const logger = createLogger(loaded.config.log.level);
  logger.info({ config: loaded.file, pid: process.pid }, 'starting');
  let stopping = false;
  let started: Daemon | undefined;
  // Registered before startup: SIGHUP's default action would end the process (a reload sent while starting).
  process.on('SIGHUP', () => {
    if (stopping) return;
    if (!started) return logger.warn({ signal: 'SIGHUP' }, 'not reloading: still starting');
    logger.info({ signal: 'SIGHUP', config: loaded.file }, 'reloading');
    started.reload().then(
      () => undefined,
      (e: Error) => logger.error({ err: e.message }, 'reload failed: still serving the previous configuration'),
    );
  });
  let exitAfterStartup: (() => void) | undefined;
  const fatal = (message: string, cause: unknown) => {
    if (stopping) return;
    logger.error({ reason: message }, 'cannot continue');
    process.stderr.write(`ocsp-hsm: ${message}\n`);
    stopping = true;
    const exit = () => process.exit(exitCodeFor(cause));
    // A token given waitForToken can fail (a refused PIN) while startup is still under way: exit once it is over.
    if (started) void started.close().finally(exit);
    else exitAfterStartup = exit;
  };
  let daemon: Daemon;
  try {
    daemon = started = await startDaemon(loaded, { logger, clock: systemClock, onFatal: (m, e) => fatal(m, e) });
  } catch (e) {
    if (exitAfterStartup) return exitAfterStartup();
    throw e;
  }
  if (exitAfterStartup) return void daemon.close().finally(exitAfterStartup);
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    daemon.close().then(
      () => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      },
      (e) => {
        logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
