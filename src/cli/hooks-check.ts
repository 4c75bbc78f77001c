/**
 * `-t` loads `proxy.request_hooks` the way a listener thread will, in a
 * child process (see hooks-check-child.ts): a missing module or a syntax
 * error is then a config error before start, not a thread failing after.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// This repository runs the .ts sources; the published package runs the built .js.
const extension = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
const childFile = fileURLToPath(new URL(`./hooks-check-child.${extension}`, import.meta.url));

export const HOOKS_CHECK_TIMEOUT_MS = 10_000;

export type HooksCheck = { ok: true } | { ok: false; code: string; message: string };

export function checkRequestHooks(modulePath: string): HooksCheck {
  const result = spawnSync(process.execPath, [...process.execArgv, childFile, modulePath], {
    encoding: 'utf8',
    timeout: HOOKS_CHECK_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (result.error || result.signal) {
    const error: NodeJS.ErrnoException | undefined = result.error;
    const timedOut = error?.code === 'ETIMEDOUT';
    return timedOut
      ? { ok: false, code: 'ETIMEDOUT', message: `the module did not load within ${HOOKS_CHECK_TIMEOUT_MS} ms` }
      : {
          ok: false,
          code: result.signal ?? 'ECHILD',
          message: result.error?.message ?? `the check ended by ${result.signal}`,
        };
  }
  // The last line: the module itself may have printed before.
  const last = result.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last) as HooksCheck;
  } catch {
    return { ok: false, code: `exit ${result.status}`, message: 'the module ended the process while loading' };
  }
}
