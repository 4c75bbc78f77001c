/**
 * One logger factory for every thread. Each thread writes synchronously to
 * the same file descriptor: pino's default asynchronous destination loses
 * buffered lines when a worker thread is terminated, and lifecycle logs are
 * few, so synchronous writes cost nothing that matters and lose nothing.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from './config/schema.ts';

export type { Logger };

export interface LogOptions {
  level: LogLevel;
  /** Resolved by the supervisor: `pretty` when asked for or when stdout is a TTY. */
  format: 'json' | 'pretty';
  file: string | null;
}

type Destination = ReturnType<typeof pino.destination>;

/** This thread's log file destinations, for reopenLogFiles(). */
const fileDestinations = new Set<Destination>();

export function createLogger(options: LogOptions, bindings: Record<string, unknown> = {}): Logger {
  const destination = pino.destination({ dest: options.file ?? 1, sync: true, mkdir: options.file !== null });
  if (options.file !== null) fileDestinations.add(destination);
  const stream =
    options.format === 'pretty'
      ? pretty({ destination, sync: true, singleLine: true, ignore: 'pid,hostname', colorize: options.file === null && process.stdout.isTTY === true })
      : destination;
  return pino({ level: options.level, base: { pid: process.pid, ...bindings } }, stream);
}

/** After logrotate moved the file (SIGUSR1, as nginx does): open the path anew. */
export function reopenLogFiles(): void {
  for (const destination of fileDestinations) destination.reopen();
}

export function resolveLogFormat(configured: 'json' | 'pretty', stdoutIsTTY: boolean): 'json' | 'pretty' {
  return configured === 'pretty' || stdoutIsTTY ? 'pretty' : 'json';
}
