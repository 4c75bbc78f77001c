/**
 * Which running sluice a command talks to: its PID file and health URL,
 * from flags or from the config file it was started with.
 */
import { existsSync } from 'node:fs';
import { request } from 'undici';
import { parseArgs } from 'node:util';
import { isProcessAlive, readPid } from '../../supervisor/pid-file.ts';
import { loadConfigFile, parseConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { UsageError } from '../../errors.ts';

export interface Target {
  pidFile: string;
  healthUrl: string;
  config: Config;
}

type Extra = Record<string, { type: 'string' | 'boolean'; short?: string; default?: string | boolean }>;

export function parseTarget<E extends Extra>(argv: readonly string[], extra: E) {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { 'pid-file': { type: 'string' }, config: { type: 'string', short: 'c' }, url: { type: 'string' }, ...extra },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const config = typeof values['config'] === 'string' ? loadConfigFile(values['config']) : parseConfig({}, '(defaults)');
  const pidFile = (values['pid-file'] as string | undefined) ?? config.proxy.pid_file;
  if (!pidFile) throw new UsageError('no PID file: pass --pid-file FILE, or -c CONFIG with proxy.pid_file set');
  const healthUrl = (values['url'] as string | undefined) ?? `${localUrl(config.proxy.listen_host, config.proxy.listen_port)}${config.proxy.health_path ?? '/health'}`;
  return { target: { pidFile, healthUrl, config } satisfies Target, values };
}

/**
 * The PID of the running proxy, or undefined after printing why there is
 * none — the seed's check_status.sh wording.
 */
export function runningPid(pidFile: string, out: (line: string) => void): number | undefined {
  if (!existsSync(pidFile)) {
    out('Proxy not running (no PID file)');
    return undefined;
  }
  const pid = readPid(pidFile);
  if (pid === undefined || !isProcessAlive(pid)) {
    out('Proxy not running (stale PID file)');
    return undefined;
  }
  return pid;
}

/** How a command on this machine reaches a listener bound to `host`: the wildcard addresses through loopback. */
export function localUrl(host: string, port: number): string {
  const dial = ['0.0.0.0', '::', ''].includes(host) ? '127.0.0.1' : host;
  return `http://${dial.includes(':') ? `[${dial}]` : dial}:${port}`;
}

/** The admin listener's /status address and credentials, when the config has one. */
export function adminStatusRequest(config: Config): { url: string; headers: Record<string, string> } | undefined {
  const admin = config.admin;
  if (!admin) return undefined;
  return {
    url: `${localUrl(admin.listen_host, admin.listen_port)}/status`,
    headers: admin.token ? { authorization: `Bearer ${admin.token}` } : {},
  };
}

/** The admin /status document, or undefined when it cannot be read now. */
export async function readAdminStatus(admin: { url: string; headers: Record<string, string> }): Promise<Record<string, unknown> | undefined> {
  try {
    const response = await request(admin.url, { headers: admin.headers, signal: AbortSignal.timeout(1_000) });
    return (await response.body.json()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
