/**
 * `-d, --daemon`: what systemd's `Type=forking` with `PIDFile=` expects
 * (Pingora calls it daemon_wait_for_ready). The parent starts the same
 * command again as a detached child in its own session, with stdout and
 * stderr going to `log.file` (or /dev/null), waits until the child reports
 * `healthy` over an IPC channel, then exits 0. If the child fails to start,
 * the parent prints the child's error and exits 1.
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/schema.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';

const CHILD_ENV = 'SLUICE_DAEMON_CHILD';

type ChildMessage = { type: 'ready'; pid: number } | { type: 'failed'; message: string };

/** The arguments without -d/--daemon: what the child runs. */
export function childArguments(argv: readonly string[]): string[] {
  return argv.filter((arg) => arg !== '-d' && arg !== '--daemon');
}

export function startDaemon(argv: readonly string[], config: Config, err: (line: string) => void): Promise<number> {
  const main = fileURLToPath(new URL(`../main.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));
  const output = config.log.file ? openSync(config.log.file, 'a') : 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, main, ...childArguments(argv)], {
    detached: true,
    stdio: ['ignore', output, output, 'ipc'],
    // Not npm's child any more: it must not stop when the npm that ran `-d` exits.
    env: { ...process.env, npm_lifecycle_event: undefined, [CHILD_ENV]: '1' },
  });
  return new Promise((resolve) => {
    let settled = false;
    const settle = (code: number) => {
      if (settled) return;
      settled = true;
      if (child.connected) child.disconnect();
      child.unref();
      resolve(code);
    };
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') {
        err(`sluice started (PID: ${message.pid})`);
        settle(0);
      } else {
        err(`sluice: failed to start: ${message.message}`);
        settle(1);
      }
    });
    child.once('exit', (code, signal) => {
      err(`sluice: failed to start: the daemon exited (${signal ?? `code ${code}`}) before it was healthy`);
      settle(1);
    });
  });
}

/** In the daemon child: tell the waiting parent when it is healthy, or why it is not. */
export function reportToDaemonParent(supervisor: Supervisor): ((failure: string) => void) | undefined {
  if (process.env[CHILD_ENV] !== '1' || !process.send) return undefined;
  delete process.env[CHILD_ENV];
  const send = (message: ChildMessage) => {
    if (!process.connected) return;
    process.send!(message);
    // The parent leaves after one message; the channel must not keep this process tied to it.
    process.disconnect();
  };
  supervisor.events.on('transition', (record) => {
    if (record.to === 'healthy') send({ type: 'ready', pid: process.pid });
  });
  return (failure) => send({ type: 'failed', message: failure });
}
