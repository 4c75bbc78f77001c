/**
 * `sluice stop`: SIGTERM to the process in the PID file, then wait until it
 * has exited and say how long the drain took. `--force` sends SIGKILL once
 * `--timeout` has passed. A stale PID file (the proxy is gone) is removed:
 * exit 0, since nothing runs any more.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isProcessAlive, releasePidFile, removeStalePidFile } from '../../supervisor/pid-file.ts';
import { UsageError } from '../../errors.ts';
import { parseTarget, pidFileState } from './target.ts';

const POLL_MS = 50;

async function exitedWithin(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isProcessAlive(pid)) return true;
    await sleep(POLL_MS);
  }
  return !isProcessAlive(pid);
}

export async function stopCommand(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const { target, values } = parseTarget(argv, {
    timeout: { type: 'string' },
    force: { type: 'boolean', default: false },
  });
  const proxy = target.config.proxy;
  // Long enough for a whole drain by default: grace period, drain timeout, and a moment to flush.
  const timeoutMs =
    values['timeout'] === undefined
      ? proxy.grace_period_ms + proxy.drain_timeout_ms + 5_000
      : Number(values['timeout']);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0)
    throw new UsageError(`--timeout: invalid value ${JSON.stringify(values['timeout'])}`);
  const state = pidFileState(target.pidFile);
  if (state.kind === 'none') {
    out('Proxy not running (no PID file)');
    return 1;
  }
  if (state.kind === 'stale') {
    // What stop is for is done: nothing runs. Left behind, the file would only mislead the next command.
    removeStalePidFile(target.pidFile, state.text);
    out('Proxy not running (stale PID file removed)');
    return 0;
  }
  const pid = state.pid;
  const started = Date.now();
  process.kill(pid, 'SIGTERM');
  if (await exitedWithin(pid, timeoutMs)) {
    out(`Proxy stopped (PID: ${pid}) after ${Date.now() - started} ms`);
    return 0;
  }
  if (!values['force']) {
    out(`Proxy still running after ${timeoutMs} ms (PID: ${pid}); use --force to kill it`);
    return 1;
  }
  process.kill(pid, 'SIGKILL');
  await exitedWithin(pid, 5_000);
  // A killed process cannot remove its PID file.
  releasePidFile(target.pidFile, pid);
  out(`Proxy killed (PID: ${pid}) after ${Date.now() - started} ms: it did not stop within ${timeoutMs} ms`);
  return 0;
}
