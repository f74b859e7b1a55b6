import { pino } from 'pino';

/** The logging calls core makes; pino's logger satisfies it. */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  child(bindings: object): Logger;
}

/**
 * Creates a structured logger writing JSON lines to stderr, silent unless a
 * level is given, so that stdout stays free for results.
 */
export function createLogger(level: string = 'silent'): Logger {
  return pino(
    {
      level,
      base: undefined,
      // Defence in depth: secrets never go into log calls, but if one does
      // under these names it is masked.
      redact: { paths: ['*.privateKey', '*.password', '*.token', '*.secret'], censor: '[redacted]' },
    },
    pino.destination(2),
  );
}

/** A logger that drops everything, for tests and library callers. */
export const silentLogger: Logger = createLogger('silent');
