/**
 * One logger factory for every thread. Each thread writes synchronously to
 * the same file descriptor: pino's default asynchronous destination loses
 * buffered lines when a worker thread is terminated, and lifecycle logs are
 * few, so synchronous writes cost nothing that matters and lose nothing.
 *
 * Where lines go: `log.file` when set, in `log.format` always (a file is
 * read by tools, whoever started the proxy); else stdout, pretty on a
 * terminal. In the foreground with a file, the main thread's lines (the
 * lifecycle, reloads, restarts, failures) also go to stdout, so the
 * terminal is not silent (see `echoFormat`).
 */
import { fstatSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/schema.ts';
import type PinoPretty from 'pino-pretty';

// Loaded only where a pretty format is asked for: a JSON logger (every worker thread, any file) never needs it.
const require = createRequire(import.meta.url);
const pretty = (): typeof PinoPretty => require('pino-pretty') as typeof PinoPretty;

export type { Logger };

export type LogFormat = 'json' | 'pretty';

export interface LogOptions {
  level: LogLevel;
  /** Resolved by the supervisor (resolveLogFormat): what the file or stdout gets. */
  format: LogFormat;
  file: string | null;
  /** Also to stdout, in this format: the main thread's logger in the foreground with a file (echoFormat). */
  echo?: LogFormat;
}

type Destination = ReturnType<typeof pino.destination>;

/** This thread's log file destinations, for reopenLogFiles(). */
const fileDestinations = new Set<Destination>();

function formatted(destination: Destination, format: LogFormat, colorize: boolean) {
  if (format !== 'pretty') return destination;
  return pretty()({ destination, sync: true, singleLine: true, ignore: 'pid,hostname', colorize });
}

/** Whether stdout is a terminal: Node leaves `isTTY` undefined on a pipe or a file, whatever @types/node declares. */
export function stdoutIsTTY(): boolean {
  return (process.stdout.isTTY as boolean | undefined) === true;
}

export function createLogger(options: LogOptions, bindings: Record<string, unknown> = {}): Logger {
  const destination = pino.destination({ dest: options.file ?? 1, sync: true, mkdir: options.file !== null });
  if (options.file !== null) fileDestinations.add(destination);
  const tty = stdoutIsTTY();
  const main = formatted(destination, options.format, options.file === null && tty);
  const base = { level: options.level, base: { pid: process.pid, ...bindings } };
  if (options.echo === undefined || options.file === null || options.level === 'silent') return pino(base, main);
  const echo = formatted(pino.destination({ dest: 1, sync: true }), options.echo, tty);
  return pino(
    base,
    pino.multistream([
      { stream: main, level: options.level },
      { stream: echo, level: options.level },
    ]),
  );
}

/** After logrotate moved the file (SIGUSR1, as nginx does): open the path anew. */
export function reopenLogFiles(): void {
  for (const destination of fileDestinations) destination.reopen();
}

/** A file always gets the configured format; stdout is pretty when asked for or when it is a terminal. */
export function resolveLogFormat(configured: LogFormat, stdoutIsTTY: boolean, file: string | null = null): LogFormat {
  if (file !== null) return configured;
  return configured === 'pretty' || stdoutIsTTY ? 'pretty' : 'json';
}

/**
 * With a log file, stdout also gets the main thread's lines (in stdout's
 * format) unless stdout *is* that file: a daemon's child writes its stdout
 * there, and would log every line twice.
 */
export function echoFormat(configured: LogFormat, stdoutIsTTY: boolean, file: string | null): LogFormat | undefined {
  if (file === null || stdoutIsLogFile(file)) return undefined;
  return resolveLogFormat(configured, stdoutIsTTY);
}

function stdoutIsLogFile(file: string): boolean {
  try {
    const out = fstatSync(1);
    const log = statSync(file);
    return out.dev === log.dev && out.ino === log.ino;
  } catch {
    // No log file yet: stdout cannot be it. No stdout at all: nothing to echo to.
    return !hasStdout();
  }
}

function hasStdout(): boolean {
  try {
    fstatSync(1);
    return true;
  } catch {
    return false;
  }
}
