/**
 * The command line, parsed by Node's own `util.parseArgs` (strict: unknown
 * flags and missing values are usage errors, exit 2). Values that also exist
 * in the config file are checked by the same schema pieces, so `-p 70000`
 * fails the same way `"listen_port": 70000` does, naming the flag instead.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.ts';
import { logLevels, proxySchema, type Config, type LogLevel } from '../config/schema.ts';

export interface CliOptions {
  port?: number;
  config?: string;
  workers?: number;
  pidFile?: string;
  testOnly: boolean;
  logLevel?: LogLevel;
  demo: boolean;
  daemon: boolean;
  help: boolean;
  version: boolean;
}

const optionSpec = {
  port: { type: 'string', short: 'p' },
  config: { type: 'string', short: 'c' },
  workers: { type: 'string', short: 'w' },
  'pid-file': { type: 'string' },
  test: { type: 'boolean', short: 't', default: false },
  'log-level': { type: 'string' },
  demo: { type: 'boolean', default: false },
  daemon: { type: 'boolean', short: 'd', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', short: 'V', default: false },
} as const;

function integerFlag(flag: string, raw: string | undefined, schema: { safeParse(v: unknown): { success: boolean } }) {
  if (raw === undefined) return undefined;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!schema.safeParse(value).success) throw new UsageError(`${flag}: invalid value ${JSON.stringify(raw)}`);
  return value;
}

export function parseCli(argv: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: optionSpec, allowPositionals: false, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!);
  }
  const { values } = parsed;
  const logLevel = values['log-level'];
  if (logLevel !== undefined && !(logLevels as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level: invalid value ${JSON.stringify(logLevel)} (one of ${logLevels.join('|')})`);
  }
  return {
    port: integerFlag('--port', values.port, proxySchema.shape.listen_port),
    config: values.config,
    workers: integerFlag('--workers', values.workers, proxySchema.shape.workers),
    pidFile: values['pid-file'],
    testOnly: values.test,
    logLevel: logLevel as LogLevel | undefined,
    demo: values.demo,
    daemon: values.daemon,
    help: values.help,
    version: values.version,
  };
}

/** Flags win over the config file. `-p` names one port: with `listeners`, only when there is one. */
export function applyCliOverrides(config: Config, cli: CliOptions): Config {
  const listeners = config.listeners;
  if (cli.port !== undefined && listeners && listeners.length !== 1) {
    throw new UsageError(
      `--port sets the port of the only listener, and the config has ${listeners.length} listeners: give their ports in $.listeners`,
    );
  }
  return {
    ...config,
    ...(cli.port !== undefined && listeners && { listeners: [{ ...listeners[0]!, port: cli.port }] }),
    proxy: {
      ...config.proxy,
      ...(cli.port !== undefined && { listen_port: cli.port }),
      ...(cli.workers !== undefined && { workers: cli.workers }),
      ...(cli.pidFile !== undefined && { pid_file: cli.pidFile }),
    },
    log: { ...config.log, ...(cli.logLevel !== undefined && { level: cli.logLevel }) },
  };
}

export const usage = `Usage: sluice [OPTIONS]
       sluice status [--pid-file FILE | -c CONFIG] [--url URL] [--json]
       sluice stop [--pid-file FILE | -c CONFIG] [--timeout MS] [--force]
       sluice reload [--pid-file FILE | -c CONFIG]
       sluice restart [--pid-file FILE | -c CONFIG] [--timeout MS]
       sluice cache purge (URL | --all) [--pid-file FILE | -c CONFIG] [--admin URL]

Options:
  -p, --port PORT        Listen port (overrides the config; default: 8080)
  -c, --config FILE      Configuration file path (JSON)
  -w, --workers N        Listener threads (default: available CPUs)
      --pid-file FILE    Write the PID here; removed on exit
  -t, --test             Validate the configuration and exit (0 valid, 2 invalid)
      --log-level LEVEL  trace|debug|info|warn|error|fatal|silent
      --demo             Also start two demo upstreams in this process and proxy to them
  -d, --daemon           Run in the background, logging to log.file (required);
                         return once healthy (exit 0) or failed (exit 1)
  -h, --help             Show this help
  -V, --version          Show the version

Commands (they find the proxy through its PID file and the FILE.json beside it):
  status                 Is it running, healthy and ready? (exit 0 yes, 1 no) --json: the admin status
  stop                   SIGTERM, wait until it has exited; --force: SIGKILL after --timeout
  reload                 SIGHUP: re-read the config file and apply it live; reports the outcome
  restart                SIGUSR2: hot restart; reports the new PID once it is healthy
  cache purge            Remove one URL's entries (every variant), or all, from the shared cache (admin API)

Signals:
  SIGTERM, SIGINT        Graceful shutdown (a second one stops at once)
  SIGHUP                 Reload the configuration file
  SIGUSR1                Reopen log files (logrotate)
  SIGUSR2                Hot restart: a new process takes over the listening sockets,
                         this one drains once the new one is healthy

Exit codes:
  0  stopped as asked   1  runtime failure   2  usage or config error
`;
