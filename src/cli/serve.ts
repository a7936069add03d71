// `ocsp-hsm serve`: start the daemon and stop it cleanly on SIGTERM/SIGINT.
import { systemClock } from '../clock';
import type { LoadedConfig } from '../config/load';
import { startDaemon } from './daemon';
import { createLogger } from './logger';

export async function serve(loaded: LoadedConfig, overrides: { port?: number } = {}): Promise<void> {
  if (overrides.port !== undefined) loaded.config.server.port = overrides.port;
  const logger = createLogger(loaded.config.log.level);
  logger.info({ config: loaded.file, pid: process.pid }, 'starting');
  let stopping = false;
  const fatal = (message: string) => {
    logger.error({ reason: message }, 'cannot continue');
    process.stderr.write(`ocsp-hsm: ${message}\n`);
    stopping = true;
    daemon.close().finally(() => process.exit(1));
  };
  const daemon = await startDaemon(loaded, { logger, clock: systemClock, onFatal: (m) => fatal(m) });
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
