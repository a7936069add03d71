// `ocsp-hsm serve`: start the daemon, reload it on SIGHUP and stop it cleanly on SIGTERM/SIGINT.
import { systemClock } from '../clock';
import type { LoadedConfig } from '../config/load';
import { Daemon, startDaemon } from './daemon';
import { exitCodeFor } from './exit-codes';
import { boundHeapGrowth } from './heap';
import { createLogger } from './logger';
import { startPrimary } from './primary';

export async function serve(loaded: LoadedConfig, overrides: { port?: number } = {}): Promise<void> {
  if (overrides.port !== undefined) loaded.config.server.port = overrides.port;
  boundHeapGrowth();
  const logger = createLogger(loaded.config.log.level);
  const { workers } = loaded.config.server;
  logger.info({ config: loaded.file, pid: process.pid, workers }, 'starting');
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
  // Registered before startup too: with serving processes, "listening" can be logged (and a supervisor can send
  // SIGTERM) before the primary's startup returns, and SIGTERM's default action would end it without a word.
  let stopAfterStartup: string | undefined;
  const onStopSignal = (signal: string) => {
    if (started) return stop(signal);
    if (stopAfterStartup) return;
    stopAfterStartup = signal;
    logger.info({ signal }, 'stopping once started');
    // A startup that does not end (a store that never answers) does not keep a stop waiting for ever.
    setTimeout(() => process.exit(0), loaded.config.server.shutdownTimeout).unref();
  };
  process.on('SIGTERM', () => onStopSignal('SIGTERM'));
  process.on('SIGINT', () => onStopSignal('SIGINT'));
  let daemon: Daemon;
  try {
    // One process, as before workers existed; or a primary holding the tokens and `workers` serving processes.
    const start = workers > 1 ? startPrimary : startDaemon;
    daemon = started = await start(loaded, { logger, clock: systemClock, onFatal: (m, e) => fatal(m, e) });
  } catch (e) {
    if (exitAfterStartup) return exitAfterStartup();
    throw e;
  }
  if (exitAfterStartup) return void daemon.close().finally(exitAfterStartup);
  if (stopAfterStartup) stop(stopAfterStartup);
  function stop(signal: string): void {
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
  }
}
