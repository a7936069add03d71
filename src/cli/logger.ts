// The daemon's structured JSON logger; PIN-like fields are redacted as a second line of defence.
import pino, { Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'ocsp-hsm' },
    redact: { paths: ['pin', '*.pin', 'userPin', 'soPin'], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
