/**
 * Runs `node src/main.ts` as a child process, black-box: its JSON log lines
 * are parsed as they arrive, and tests wait for a line or for the exit
 * (every wait has an upper bound, so a broken build fails instead of hanging).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const mainFile = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface SluiceProcess {
  child: ChildProcess;
  pid: number;
  lines: LogLine[];
  stderr: () => string;
  /** The first line (at index `fromIndex` or later) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number, fromIndex?: number): Promise<LogLine>;
  /** The port from the "Listening on" line. */
  port(timeoutMs?: number): Promise<number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

const running = new Set<ChildProcess>();

/** For `after` hooks: no child outlives the test file. */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/**
 * For `after` hooks: SIGKILL processes that are not our children (a hot
 * restart's successor, a daemon), each named by its PID; one that has
 * exited already (ESRCH) is skipped, as is an unknown PID.
 */
export function killPids(pids: Iterable<number | undefined>): void {
  for (const pid of pids) {
    if (pid === undefined) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* ESRCH: it has exited already */
    }
  }
}

export function startSluice(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): SluiceProcess {
  return startNode([mainFile, ...args], options);
}

/** Any Node program, watched the same way (the seed examples, for one). */
export function startNode(nodeArgs: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): SluiceProcess {
  const child = spawn(process.execPath, nodeArgs, {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, npm_lifecycle_event: undefined, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const lines: LogLine[] = [];
  const waiters = new Set<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let stdoutBuffer = '';
  let stderrText = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdoutBuffer += chunk;
    let newline: number;
    while ((newline = stdoutBuffer.indexOf('\n')) !== -1) {
      const text = stdoutBuffer.slice(0, newline);
      stdoutBuffer = stdoutBuffer.slice(newline + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text, raw: true };
      }
      lines.push(line);
      for (const waiter of waiters)
        if (waiter.match(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderrText += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': only then has every line of stdout been read.
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );

  const waitForLog = (match: (line: LogLine) => boolean, timeoutMs = 10_000, fromIndex = 0) => {
    const seen = lines.slice(fromIndex).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const waiter = {
        match,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(
          new Error(
            `no matching log line within ${timeoutMs} ms; got:\n${lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${stderrText}`,
          ),
        );
      }, timeoutMs);
      waiters.add(waiter);
      void exited.then(() =>
        setImmediate(() => {
          if (!waiters.has(waiter)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          reject(
            new Error(
              `process exited before a matching log line; got:\n${lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${stderrText}`,
            ),
          );
        }),
      );
    });
  };

  return {
    child,
    pid: child.pid!,
    lines,
    stderr: () => stderrText,
    waitForLog,
    async port(timeoutMs) {
      const line = await waitForLog((l) => l['event'] === 'listeners.listening', timeoutMs);
      return line['port'] as number;
    },
    exited,
    kill: (signal = 'SIGTERM') => void child.kill(signal),
  };
}

/** A lifecycle transition line (the supervisor's, not a backend's health flip). */
export const transitionTo = (state: string) => (line: LogLine) =>
  line['actor'] === 'supervisor' && line['to'] === state && 'from' in line && 'event' in line;

/** Bounded wait for the exit; rejects if the process is still running after `timeoutMs`. */
export function exitWithin(proc: SluiceProcess, timeoutMs = 10_000) {
  return Promise.race([
    proc.exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms`)), timeoutMs).unref(),
    ),
  ]);
}

/**
 * Waits until each of `listeners` listener threads routes to at least
 * `selectable` backends: their `snapshot.applied` lines (log level debug).
 * A health flip is logged before the pool's snapshot reaches the listeners.
 */
export async function routingTo(proc: SluiceProcess, listeners: number, selectable: number): Promise<void> {
  for (let listener = 0; listener < listeners; listener++) {
    await proc.waitForLog(
      (l) =>
        l['event'] === 'snapshot.applied' && l['listener'] === listener && (l['selectable'] as number) >= selectable,
    );
  }
}

/**
 * Starts sluice with debug logs and resolves once it is healthy and each of
 * its `listeners` listener threads routes to at least `selectable` backends.
 */
export async function startRouting(
  args: string[],
  listeners: number,
  selectable: number,
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ sluice: SluiceProcess; port: number }> {
  const sluice = startSluice([...args, '--log-level', 'debug'], options);
  const port = await sluice.port();
  await sluice.waitForLog(transitionTo('healthy'));
  await routingTo(sluice, listeners, selectable);
  return { sluice, port };
}

/** For `after` hooks: SIGTERM, then a bounded wait for the exit (nothing if it never started). */
export async function stopSluice(sluice: SluiceProcess | undefined): Promise<void> {
  if (!sluice) return;
  sluice.kill('SIGTERM');
  await exitWithin(sluice);
}
