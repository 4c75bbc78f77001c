/**
 * `sluice status`: the seed's check_status.sh, built in — same messages,
 * same exit codes — plus what an operator means by "running": /health 200
 * but /ready 503 (no backend it can use) is not ready, exit 1. The
 * addresses probed are the ones the proxy recorded beside its PID file.
 * `--json` prints the admin /status document instead.
 */
import { request } from 'undici';
import { UsageError } from '../../errors.ts';
import { parseTarget, runningPid, type AdminRequest } from './target.ts';

export async function statusCommand(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const { target, values } = parseTarget(argv, { json: { type: 'boolean', default: false } });
  if (values['json']) return printAdminStatus(target.admin, out);
  const pid = runningPid(target.pidFile, out);
  if (pid === undefined) return 1;
  if (target.healthUrl === null) {
    out(`Proxy running (PID: ${pid}); proxy.health_path is off, so there is nothing to probe`);
    return 0;
  }
  const code = await httpStatus(target.healthUrl);
  if (code !== 200) {
    // As curl's %{http_code}: 000 when nothing answered. The seed's line first, then where it asked.
    out(
      `Proxy running but unhealthy (PID: ${pid}, HTTP: ${String(code).padStart(3, '0')}); probed ${target.healthUrl}`,
    );
    return 1;
  }
  if (target.readyUrl !== null && (await httpStatus(target.readyUrl)) === 503) {
    out(`Proxy running but not ready (PID: ${pid}, no healthy backend)`);
    return 1;
  }
  out(`Proxy running and healthy (PID: ${pid})`);
  return 0;
}

async function httpStatus(url: string): Promise<number> {
  try {
    const response = await request(url, { signal: AbortSignal.timeout(5_000) });
    await response.body.dump();
    return response.statusCode;
  } catch {
    return 0;
  }
}

async function printAdminStatus(admin: AdminRequest | undefined, out: (line: string) => void): Promise<number> {
  if (!admin) throw new UsageError('--json needs the admin listener: pass -c CONFIG with an "admin" section');
  try {
    const response = await request(admin.url, { headers: admin.headers, signal: AbortSignal.timeout(5_000) });
    const body = (await response.body.json()) as { state?: string };
    out(JSON.stringify(body, null, 2));
    return response.statusCode === 200 && body.state === 'healthy' ? 0 : 1;
  } catch (error) {
    out(JSON.stringify({ running: false, error: (error as Error).message }));
    return 1;
  }
}
