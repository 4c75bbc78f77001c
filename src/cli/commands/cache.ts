/**
 * `sluice cache purge URL` (every variant of one URL) and `sluice cache
 * purge --all`: the admin API's `DELETE /cache`, with the admin token. The
 * admin address is the running proxy's (beside its PID file) when there is
 * one, else the config's `admin` section; `--admin URL` names it outright.
 */
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { loadConfigFile, parseConfig } from '../../config/load.ts';
import { UsageError } from '../../errors.ts';
import { localUrl, readProxyInfo } from '../../supervisor/proxy-info.ts';

export async function cacheCommand(argv: readonly string[], out: (line: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string', short: 'c' },
        'pid-file': { type: 'string' },
        admin: { type: 'string' },
        all: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!);
  }
  const [action, url, ...rest] = parsed.positionals;
  const all = parsed.values.all;
  if (action !== 'purge' || rest.length > 0 || (url === undefined) === !all) {
    throw new UsageError('usage: sluice cache purge (URL | --all) [-c CONFIG | --pid-file FILE] [--admin URL]');
  }
  const config = parsed.values.config ? loadConfigFile(parsed.values.config) : parseConfig({}, '(defaults)');
  const pidFile = parsed.values['pid-file'] ?? config.proxy.pid_file;
  const running = pidFile ? readProxyInfo(pidFile)?.admin_url : undefined;
  const base =
    parsed.values.admin ?? running ?? (config.admin && localUrl(config.admin.listen_host, config.admin.listen_port));
  if (!base) throw new UsageError('no admin listener: pass -c CONFIG with an "admin" section, or --admin URL');
  const token = config.admin?.token;
  const target = `${base}/cache${url === undefined ? '' : `?url=${encodeURIComponent(url)}`}`;
  try {
    const response = await request(target, {
      method: 'DELETE',
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.body.json()) as { purged?: number; error?: string };
    if (response.statusCode === 200) {
      out(`Purged ${body.purged} ${body.purged === 1 ? 'entry' : 'entries'}${url === undefined ? '' : ` for ${url}`}`);
      return 0;
    }
    out(`Purge failed (HTTP ${response.statusCode}): ${body.error ?? 'unknown error'}`);
    return 1;
  } catch (error) {
    out(`Purge failed: cannot reach the admin listener at ${base} (${(error as Error).message})`);
    return 1;
  }
}
