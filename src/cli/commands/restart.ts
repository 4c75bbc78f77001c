/**
 * `sluice restart`: SIGUSR2 to the running proxy (a hot restart), then the
 * outcome. Success is the PID file naming a new, live process: the successor
 * writes it only once it is healthy. A failure is read from the admin
 * /status when the admin listener is configured; without it, the command
 * waits until the old process's deadline for its successor has passed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '../../errors.ts';
import { isProcessAlive, readPid } from '../../supervisor/pid-file.ts';
import type { RestartOutcome } from '../../supervisor/supervisor.ts';
import { parseTarget, readAdminStatus, runningPid } from './target.ts';

/**
 * How often the PID file is read: the successor writes it the moment it is
 * healthy, and a read is a few microseconds, so a lazier poll only adds its
 * half-interval to every restart. The admin /status (an HTTP request, only
 * to see a failure early) is asked less often.
 */
const POLL_MS = 5;
const ADMIN_POLL_MS = 100;
/** The old process kills a successor not healthy within startup_timeout_ms + 5 s; a moment more to see it. */
const SUCCESSOR_MARGIN_MS = 6_000;

export async function restartCommand(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const { target, values } = parseTarget(argv, { timeout: { type: 'string' } }, { checkConfig: true });
  const timeoutMs =
    values['timeout'] === undefined
      ? target.config.proxy.startup_timeout_ms + SUCCESSOR_MARGIN_MS
      : Number(values['timeout']);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0)
    throw new UsageError(`--timeout: invalid value ${JSON.stringify(values['timeout'])}`);
  const pid = runningPid(target.pidFile, out);
  if (pid === undefined) return 1;
  const admin = target.admin;
  const sentAt = Date.now();
  let adminAskedAt = -Infinity;
  process.kill(pid, 'SIGUSR2');
  while (Date.now() - sentAt < timeoutMs) {
    const now = readPid(target.pidFile);
    if (now !== undefined && now !== pid && isProcessAlive(now)) {
      out(`Proxy restarted (PID: ${pid} → ${now}) after ${Date.now() - sentAt} ms; PID ${pid} is draining`);
      return 0;
    }
    if (!isProcessAlive(pid)) {
      out(`Proxy exited during the restart (PID: ${pid}); no new process took over`);
      return 1;
    }
    const askAdmin = admin !== undefined && Date.now() - adminAskedAt >= ADMIN_POLL_MS;
    if (askAdmin) adminAskedAt = Date.now();
    const outcome = askAdmin
      ? ((await readAdminStatus(admin))?.['last_restart'] as RestartOutcome | null | undefined)
      : undefined;
    if (outcome && !outcome.ok && Date.parse(outcome.at) >= sentAt - 5) {
      out(`Restart failed (PID: ${pid} keeps serving): ${outcome.error}`);
      return 1;
    }
    await sleep(POLL_MS);
  }
  out(`No new process took over within ${timeoutMs} ms (PID: ${pid} keeps serving); its log says why`);
  return 1;
}
