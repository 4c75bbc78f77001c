/**
 * Errors with a stable `code`, one table for all of them (documented in
 * docs/errors.md; a test fails when a code is missing there). Across threads
 * only `{ code, message }` travels, so callers branch on `code`, never on
 * `instanceof`.
 */
export const errorCodes = {
  SLUICE_CONFIG_INVALID: 'A config file, config value or init option is invalid.',
  SLUICE_USAGE: 'The command line is invalid.',
  SLUICE_PID_FILE_LOCKED: 'The PID file names a running process.',
  SLUICE_STARTUP_TIMEOUT: 'No backend became healthy within startup_timeout_ms.',
  SLUICE_LISTEN_FAILED: 'A listener thread could not bind the port.',
  SLUICE_WORKER_FAILED: 'An actor thread crashed or exited.',
  SLUICE_ALREADY_SERVING: 'serve() was called on a proxy that is serving or has stopped.',
  SLUICE_UNKNOWN_BACKEND: 'removeBackend() named a backend the pool does not have.',
  SLUICE_HOOK_FAILED: 'A lifecycle or request hook threw or timed out.',
  SLUICE_TLS_CERTIFICATE:
    'A listener thread refused the certificates a reload gave it; it keeps serving the ones it had.',
  SLUICE_TLS_CERTIFICATE_EXPIRES_SOON:
    'A certificate a TLS listener serves expires in less than 14 days (or has expired).',
  SLUICE_HOT_RESTART_FAILED:
    'The process started by a hot restart (SIGUSR2) exited or was not healthy in time; the old one keeps serving.',
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class SluiceError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A bad config file, flag or value: exit 2. */
export class ConfigError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_CONFIG_INVALID', message);
  }
}

/** A bad command line: exit 2. */
export class UsageError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_USAGE', message);
  }
}

/** The PID file names a live process: exit 1. */
export class PidFileLockedError extends SluiceError {
  readonly pid: number;
  constructor(file: string, pid: number) {
    super('SLUICE_PID_FILE_LOCKED', `${file}: already owned by running process ${pid}`);
    this.pid = pid;
  }
}

/** The seed's `error.StartupTimeout`. */
export class StartupTimeout extends SluiceError {
  constructor(message: string) {
    super('SLUICE_STARTUP_TIMEOUT', message);
  }
}

export class ListenError extends SluiceError {
  /** The system's code: `EADDRINUSE`, `EACCES`… */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('SLUICE_LISTEN_FAILED', message);
    this.reason = reason;
  }
}

export class WorkerFailedError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_WORKER_FAILED', message);
  }
}

export class AlreadyServingError extends SluiceError {
  constructor() {
    super('SLUICE_ALREADY_SERVING', 'serve() may be called once per proxy');
  }
}

export class UnknownBackendError extends SluiceError {
  constructor(backend: string) {
    super('SLUICE_UNKNOWN_BACKEND', `no backend ${backend} in the pool`);
  }
}
