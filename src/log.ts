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

export function createLogger(options: LogOptions, bindings: Record<string, unknown> = {}): Logger {
  const destination = options.file ?? 1;
  const stream =
    options.format === 'pretty'
      ? pretty({ destination, sync: true, singleLine: true, ignore: 'pid,hostname', colorize: options.file === null && process.stdout.isTTY === true })
      : pino.destination({ dest: destination, sync: true, mkdir: options.file !== null });
  return pino({ level: options.level, base: { pid: process.pid, ...bindings } }, stream);
}

export function resolveLogFormat(configured: 'json' | 'pretty', stdoutIsTTY: boolean): 'json' | 'pretty' {
  return configured === 'pretty' || stdoutIsTTY ? 'pretty' : 'json';
}
