/**
 * `sluice status`: the seed's check_status.sh, built in — same messages,
 * same exit codes. `--json` prints the admin /status document instead.
 */
import { request } from 'undici';
import { UsageError } from '../../errors.ts';
import type { Config } from '../../config/schema.ts';
import { adminStatusRequest, parseTarget, runningPid } from './target.ts';

export async function statusCommand(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const { target, values } = parseTarget(argv, { json: { type: 'boolean', default: false } });
  if (values['json']) return printAdminStatus(target.config, out);
  const pid = runningPid(target.pidFile, out);
  if (pid === undefined) return 1;
  const code = await httpStatus(target.healthUrl);
  if (code === 200) {
    out(`Proxy running and healthy (PID: ${pid})`);
    return 0;
  }
  // As curl's %{http_code}: 000 when nothing answered.
  out(`Proxy running but unhealthy (PID: ${pid}, HTTP: ${String(code).padStart(3, '0')})`);
  return 1;
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

async function printAdminStatus(config: Config, out: (line: string) => void): Promise<number> {
  const admin = adminStatusRequest(config);
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
