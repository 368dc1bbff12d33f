import pino, { type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr-free stdout; one logger per process, children per job. */
export function createLogger(name: string, level = 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid, service: 'video-scanner' } });
}
