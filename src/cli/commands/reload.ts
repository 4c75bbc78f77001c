/**
 * `sluice reload`: SIGHUP to the running proxy, then the outcome. With the
 * admin listener configured, the command waits (5 s at most) for the
 * proxy's own report in /status; without it, the proxy's log has it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReloadOutcome } from '../../supervisor/supervisor.ts';
import { parseTarget, readAdminStatus, runningPid } from './target.ts';

const WAIT_MS = 5_000;
const POLL_MS = 50;

export async function reloadCommand(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const { target } = parseTarget(argv, {}, { checkConfig: true });
  const pid = runningPid(target.pidFile, out);
  if (pid === undefined) return 1;
  const sentAt = Date.now();
  process.kill(pid, 'SIGHUP');
  const admin = target.admin;
  if (!admin) {
    out(`Sent SIGHUP to sluice (PID: ${pid}); its log says whether the configuration was reloaded`);
    return 0;
  }
  while (Date.now() - sentAt < WAIT_MS) {
    const outcome = (await readAdminStatus(admin))?.['last_reload'] as ReloadOutcome | null | undefined;
    if (outcome && Date.parse(outcome.at) >= sentAt - 5) {
      if (!outcome.ok) {
        out(`Reload failed (PID: ${pid}): ${outcome.error}`);
        return 1;
      }
      const restart = outcome.needs_restart?.length
        ? `; needs a restart to apply: ${outcome.needs_restart.join(', ')}`
        : '';
      out(`Configuration reloaded (PID: ${pid})${restart}`);
      return 0;
    }
    await sleep(POLL_MS);
  }
  out(`No reload reported within ${WAIT_MS} ms (PID: ${pid})`);
  return 1;
}
