/**
 * A listener thread's access log: lines gathered in memory and written in
 * batches, each batch with one write() call, so a request costs no system call.
 *
 * Several threads, and an old and a new process during a hot restart, append
 * to the same file, each through its own descriptor opened with O_APPEND.
 * POSIX makes O_APPEND's move-to-the-end and write one atomic step, and Linux
 * holds the file's inode lock for the whole write() on a regular file, so one
 * write() of a batch lands whole before or after another appender's, never
 * inside it: lines are neither interleaved nor overwritten.
 *
 * The writes are synchronous on purpose: flush() must have finished when a
 * stopping or failing thread returns from it, and the batches are few.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { encodeJsonLine } from './json-bytes.ts';
import { type AccessRecord, formatCombined, formatJson } from './record.ts';

export interface AccessLogOptions {
  /** `-` is standard output (fd 1). */
  file: string;
  format: 'json' | 'combined';
}

const STDOUT = '-';
const BATCH_BYTES = 64 * 1024;
/**
 * A pipe (stdout, most often) keeps a write whole against other writers only
 * up to PIPE_BUF, 4 KiB on Linux; larger batches could tear lines there.
 */
const PIPE_BATCH_BYTES = 4096;
const FLUSH_AFTER_MS = 100;
/** A non-blocking stdout pipe a reader is slow to drain: wait for it up to about 100 ms, then drop the batch. */
const STALLED_RETRIES = 100;
const STALLED_PAUSE_MS = 1;
const pauseCell = new Int32Array(new SharedArrayBuffer(4));
const NEWLINE = 0x0a;

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException | null)?.code ?? 'UNKNOWN';
}

export class AccessLogWriter {
  /** Lines lost: to writes that failed, and written after close(). */
  dropped = 0;
  /** The code of the last write, reopen or close that failed, e.g. 'ENOSPC'. */
  lastError: string | null = null;
  readonly #file: string;
  readonly #format: (record: AccessRecord) => string;
  /** Writes a line's bytes into the batch itself (-1: it did not); JSON only. */
  readonly #encode: ((record: AccessRecord, out: Buffer, at: number) => number) | undefined;
  readonly #limit: number;
  readonly #batch: Buffer;
  #used = 0;
  /** -1 once the descriptor is known gone, so that a number reused for another file is never written or closed. */
  #fd: number;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #onTimer = () => {
    this.#timer = null;
    this.flush();
  };

  /** Throws what opening the file throws (ENOENT for a missing directory): the config layer reports it. */
  constructor(options: AccessLogOptions) {
    switch (options.format) {
      case 'json':
        this.#format = formatJson;
        this.#encode = encodeJsonLine;
        break;
      case 'combined':
        this.#format = formatCombined;
        this.#encode = undefined;
        break;
      default:
        // Reached only by a caller that bypassed the types (plain JavaScript).
        throw new Error(`unknown access log format ${String(options.format satisfies never)}`);
    }
    this.#file = options.file;
    this.#limit = options.file === STDOUT ? PIPE_BATCH_BYTES : BATCH_BYTES;
    this.#batch = Buffer.allocUnsafe(this.#limit);
    this.#fd = options.file === STDOUT ? 1 : openSync(options.file, 'a');
  }

  write(record: AccessRecord): void {
    if (this.#closed) {
      this.dropped++;
      return;
    }
    const end = this.#encode?.(record, this.#batch, this.#used) ?? -1;
    if (end >= 0) return this.#added(end);
    const line = this.#format(record);
    // UTF-8 takes at most 3 bytes per UTF-16 unit: the exact length is needed only when that bound does not fit.
    if (line.length * 3 > this.#limit - this.#used) {
      const bytes = Buffer.byteLength(line);
      if (bytes > this.#limit - this.#used) this.flush();
      if (bytes > this.#limit) {
        this.#writeAll(Buffer.from(line));
        return;
      }
    }
    this.#added(this.#used + this.#batch.write(line, this.#used));
  }

  /** A line now ends the batch at `end`. */
  #added(end: number): void {
    // Armed by a batch's first line, not a standing interval: an idle thread has no timer.
    if (this.#used === 0) this.#timer = setTimeout(this.#onTimer, FLUSH_AFTER_MS).unref();
    this.#used = end;
    if (end === this.#limit) this.flush();
  }

  /** Writes the batch now, with one write() unless the system takes it in parts. */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#used === 0) return;
    const batch = this.#batch.subarray(0, this.#used);
    this.#used = 0;
    this.#writeAll(batch);
  }

  /**
   * After logrotate moved the file (SIGUSR1): the lines so far go to the moved
   * file, the next ones to a new file at the path. If the path cannot be
   * opened, the lines keep going to the moved file rather than being lost.
   */
  reopen(): void {
    this.flush();
    if (this.#closed || this.#file === STDOUT) return;
    let fd: number;
    try {
      fd = openSync(this.#file, 'a');
    } catch (error) {
      this.lastError = errorCode(error);
      return;
    }
    this.#closeFd();
    this.#fd = fd;
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#closeFd();
  }

  /** Test-only: the descriptor written to. */
  get fdForTest(): number {
    return this.#fd;
  }

  /** Never throws: a full disk or a closed pipe must not take the listener thread down with it. */
  #writeAll(bytes: Buffer): void {
    if (this.#fd < 0) return this.#drop(bytes, 0, 'EBADF');
    let written = 0;
    let stalled = 0;
    while (written < bytes.length) {
      let code: string;
      try {
        const n = writeSync(this.#fd, bytes, written, bytes.length - written);
        written += n;
        if (n > 0) continue;
        code = 'EAGAIN';
      } catch (error) {
        code = errorCode(error);
      }
      if (code === 'EAGAIN' && stalled++ < STALLED_RETRIES) {
        Atomics.wait(pauseCell, 0, 0, STALLED_PAUSE_MS);
        continue;
      }
      if (code === 'EBADF') this.#fd = -1;
      return this.#drop(bytes, written, code);
    }
  }

  /** A line is lost if its newline was not written: the one cut in the middle is lost too. */
  #drop(bytes: Buffer, written: number, code: string): void {
    this.lastError = code;
    for (let at = bytes.indexOf(NEWLINE, written); at !== -1; at = bytes.indexOf(NEWLINE, at + 1)) this.dropped++;
  }

  #closeFd(): void {
    const fd = this.#fd;
    this.#fd = -1;
    if (fd < 0 || this.#file === STDOUT) return;
    try {
      closeSync(fd);
    } catch (error) {
      this.lastError = errorCode(error);
    }
  }
}
