import type { LogLevel, LogMetadata, Logger as SdkLogger } from '@temporalio/common';
import type { Logger } from '../logger';

/** Routes the Temporal SDK's logs (workflow `log`, activity `log`, core) into our pino logger. */
export function toSdkLogger(logger: Logger): SdkLogger {
  const write = (level: LogLevel, message: string, meta?: LogMetadata): void => {
    const fields = meta ?? {};
    switch (level) {
      case 'TRACE':
        logger.trace(fields, message);
        break;
      case 'DEBUG':
        logger.debug(fields, message);
        break;
      case 'INFO':
        // The bundler's webpack report is a screenful on every worker start: kept for debugging only.
        if (message.startsWith('asset workflow-bundle')) logger.debug(fields, message);
        else logger.info(fields, message);
        break;
      case 'WARN':
        logger.warn(fields, message);
        break;
      default:
        logger.error(fields, message);
    }
  };
  return {
    log: write,
    trace: (message, meta) => write('TRACE', message, meta),
    debug: (message, meta) => write('DEBUG', message, meta),
    info: (message, meta) => write('INFO', message, meta),
    warn: (message, meta) => write('WARN', message, meta),
    error: (message, meta) => write('ERROR', message, meta),
  };
}
