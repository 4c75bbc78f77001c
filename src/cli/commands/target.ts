/**
 * Which running sluice a command talks to, and how. The PID file comes from
 * `--pid-file` or from `-c CONFIG`'s `proxy.pid_file`. The addresses come
 * from the file the proxy writes beside it (proxy-info.ts): the ones it
 * actually listens on, whatever the config file says now. Everything else
 * (the admin token, the timeouts) comes from `-c CONFIG`, or else from the
 * config file the running proxy names there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isProcessAlive, readPid } from '../../supervisor/pid-file.ts';
import { probeAddress } from '../../config/listeners.ts';
import { localUrl, readProxyInfo } from '../../supervisor/proxy-info.ts';
import { loadConfigFile, parseConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { UsageError } from '../../errors.ts';

export interface AdminRequest {
  /** The admin /status URL. */
  url: string;
  headers: Record<string, string>;
}

export interface Target {
  pidFile: string;
  /** What `status` probes: null when `proxy.health_path` is off. */
  healthUrl: string | null;
  readyUrl: string | null;
  admin: AdminRequest | undefined;
  config: Config;
}

type Extra = Record<string, { type: 'string' | 'boolean'; short?: string; default?: string | boolean }>;

export interface TargetOptions {
  /**
   * Refuse (exit 2) when the running proxy's config file no longer loads:
   * for `reload` and `restart`, which make the proxy read it (as `nginx -t`
   * before `nginx -s reload`). `status` and `stop` go on with the defaults.
   */
  checkConfig?: boolean;
}

export function parseTarget(argv: readonly string[], extra: Extra, options: TargetOptions = {}) {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        'pid-file': { type: 'string' },
        config: { type: 'string', short: 'c' },
        url: { type: 'string' },
        ...extra,
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const given = typeof values['config'] === 'string' ? loadConfigFile(values['config']) : undefined;
  const pidFile = (values['pid-file'] as string | undefined) ?? given?.proxy.pid_file;
  if (!pidFile) throw new UsageError('no PID file: pass --pid-file FILE, or -c CONFIG with proxy.pid_file set');
  const info = readProxyInfo(pidFile);
  const config = given ?? configOfRunning(info?.config ?? null, options);
  const proxy = config.proxy;
  const probe = probeAddress(config);
  const fromConfig = (path: string | null) =>
    path === null ? null : `${localUrl(probe.host, probe.port, probe.scheme)}${path}`;
  const healthUrl = (values['url'] as string | undefined) ?? (info ? info.health_url : fromConfig(proxy.health_path));
  const readyUrl = info ? info.ready_url : fromConfig(proxy.ready_path);
  const adminBase = info
    ? info.admin_url
    : config.admin && localUrl(config.admin.listen_host, config.admin.listen_port);
  const token = config.admin?.token;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const admin: AdminRequest | undefined = adminBase ? { url: `${adminBase}/status`, headers } : undefined;
  return { target: { pidFile, healthUrl, readyUrl, admin, config } satisfies Target, values };
}

function configOfRunning(file: string | null, options: TargetOptions): Config {
  if (file === null) return parseConfig({}, '(defaults)');
  try {
    return loadConfigFile(file);
  } catch (error) {
    if (options.checkConfig) throw error;
    return parseConfig({}, '(defaults)');
  }
}

/** What the PID file names: nothing, a dead process (with the file's text, to remove it safely), or a live one. */
export type PidFileState = { kind: 'none' } | { kind: 'stale'; text: string } | { kind: 'running'; pid: number };

export function pidFileState(pidFile: string): PidFileState {
  if (!existsSync(pidFile)) return { kind: 'none' };
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch {
    return { kind: 'none' };
  }
  const pid = readPid(pidFile);
  return pid === undefined || !isProcessAlive(pid) ? { kind: 'stale', text } : { kind: 'running', pid };
}

/**
 * The PID of the running proxy, or undefined after printing why there is
 * none — the seed's check_status.sh wording.
 */
export function runningPid(pidFile: string, out: (line: string) => void): number | undefined {
  const state = pidFileState(pidFile);
  if (state.kind === 'running') return state.pid;
  out(state.kind === 'none' ? 'Proxy not running (no PID file)' : 'Proxy not running (stale PID file)');
  return undefined;
}

/** The admin /status document, or undefined when it cannot be read now. */
export async function readAdminStatus(admin: AdminRequest): Promise<Record<string, unknown> | undefined> {
  try {
    // Loaded at the first ask, not with the command: `sluice restart` without an admin listener never needs it.
    const { request } = await import('undici');
    const response = await request(admin.url, { headers: admin.headers, signal: AbortSignal.timeout(1_000) });
    return (await response.body.json()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
