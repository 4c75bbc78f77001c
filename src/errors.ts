/**
 * Errors with a stable `code`. Across threads only `{ code, message }` travels,
 * so callers branch on `code`, never on `instanceof`.
 */
export class SluiceError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
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
