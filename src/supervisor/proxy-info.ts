/**
 * Where the running proxy can be reached, beside its PID file: `sluice.pid`
 * → `sluice.pid.json`. The PID file alone says which process runs; the
 * commands (`status`, `stop`, `reload`, `restart`) also need the addresses
 * it actually listens on (port 0, `-p`) and the config file it runs. Written
 * and removed with the PID file, atomically (a rename), and rewritten by a
 * hot restart's successor when it takes the PID file over.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';

export interface ProxyInfo {
  pid: number;
  /** The absolute path of the config file it runs, or null (no -c, or an embedding program). */
  config: string | null;
  /** `http://127.0.0.1:8080/health`; null when `proxy.health_path` is off. */
  health_url: string | null;
  /** `http://127.0.0.1:8080/ready`; null when `proxy.ready_path` is off. */
  ready_url: string | null;
  /** The admin listener's base URL, `http://127.0.0.1:9901`; null without one. */
  admin_url: string | null;
}

export const proxyInfoFile = (pidFile: string): string => `${pidFile}.json`;

/** How a command on this machine reaches a listener bound to `host`: the wildcard addresses through loopback. */
export function localUrl(host: string, port: number, scheme: 'http' | 'https' = 'http'): string {
  const dial = ['0.0.0.0', '::', ''].includes(host) ? '127.0.0.1' : host;
  return `${scheme}://${dial.includes(':') ? `[${dial}]` : dial}:${port}`;
}

export function writeProxyInfo(pidFile: string, info: ProxyInfo): void {
  const file = proxyInfoFile(pidFile);
  const temporary = `${file}.${info.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o644 });
  renameSync(temporary, file);
}

export function readProxyInfo(pidFile: string): ProxyInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(proxyInfoFile(pidFile), 'utf8')) as ProxyInfo;
    return Number.isInteger(info.pid) ? info : undefined;
  } catch {
    return undefined;
  }
}

/** Removed only if it still names `pid`: a successor's file stays when its predecessor exits. */
export function removeProxyInfo(pidFile: string, pid: number): void {
  if (readProxyInfo(pidFile)?.pid !== pid) return;
  try {
    unlinkSync(proxyInfoFile(pidFile));
  } catch {
    /* removed already: what removing it asks for */
  }
}
