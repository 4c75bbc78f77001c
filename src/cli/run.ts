/**
 * `sluice` from the command line: parse flags, load and check the config,
 * then hand over to the supervisor and return the exit code.
 * Exit codes: 0 stopped as asked, 1 runtime failure, 2 usage or config error.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { applyCliOverrides, parseCli, usage, type CliOptions } from './args.ts';
import { loadConfigFile, parseConfig } from '../config/load.ts';
import { listenAddresses, listenersOverlap, type Config } from '../config/schema.ts';
import type { DemoUpstreams } from '../demo/upstreams.ts';
import { ConfigError } from '../errors.ts';
import { refuse } from './refuse.ts';
import { isSubcommand, runSubcommand } from './subcommands.ts';
import { allBackends } from '../config/upstream-groups.ts';
import { checkRequestHooks } from './hooks-check.ts';
import { createLogger, echoFormat, resolveLogFormat, stdoutIsTTY } from '../log.ts';
import { Supervisor } from '../supervisor/supervisor.ts';
import type { EarlySignals } from './early-signals.ts';
import { daemonLogFile, failedToStartLine, sluiceCommand, startDaemon } from './daemon.ts';
import { waitingParent } from '../supervisor/ready-channel.ts';
import { takeInheritedSockets } from '../supervisor/inherited-sockets.ts';
import { takeTicketKeys } from '../supervisor/ticket-key-handover.ts';
import { RouteTable } from '../routing/route-table.ts';
import { cachePathProblem } from '../cache/path-check.ts';

const version = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** How errors name the config: the absolute path loadConfigFile uses, or `(defaults)`. */
const configSource = (cli: CliOptions) => (cli.config === undefined ? '(defaults)' : resolve(cli.config));

function loadConfig(cli: CliOptions): Config {
  const fromFile = cli.config === undefined ? parseConfig({}, '(defaults)') : loadConfigFile(cli.config);
  const config = applyCliOverrides(fromFile, cli);
  // The file alone was checked by the schema; -p can still land on the admin port.
  const admin = config.admin;
  if (cli.port !== undefined && admin && listenAddresses(config).some((address) => listenersOverlap(address, admin))) {
    throw new ConfigError(
      `${configSource(cli)}: $.admin.listen_port: --port ${cli.port} is the admin listener's port (got ${admin.listen_port})`,
    );
  }
  return config;
}

/** What `-t` checks beyond the schema: the request-hooks module loads (in a child process). */
function checkRunnable(config: Config, cli: CliOptions): void {
  const cachePath = config.cache?.path;
  const cacheProblem = cachePath === undefined ? undefined : cachePathProblem(cachePath);
  if (cacheProblem !== undefined) {
    const path = JSON.stringify(cachePath);
    const problem = `cannot create and write the directory: ${cacheProblem}`;
    throw new ConfigError(`${configSource(cli)}: $.cache.path: ${problem} (got ${path})`);
  }
  const hooks = config.proxy.request_hooks;
  if (hooks === null) return;
  const outcome = checkRequestHooks(hooks);
  if (!outcome.ok) {
    throw new ConfigError(
      `${configSource(cli)}: $.proxy.request_hooks: cannot load the module: ${outcome.code}: ${outcome.message} (got ${JSON.stringify(hooks)})`,
    );
  }
}

/**
 * What `-t` reports without refusing the file: no backends at all (the
 * proxy starts but cannot become healthy; an embedding program or --demo
 * may add them), and routes an earlier route makes unreachable (Envoy's
 * first-match rule).
 */
function configWarnings(config: Config, cli: CliOptions): string[] {
  const warnings: string[] = [];
  if (allBackends(config).length === 0 && !cli.demo)
    warnings.push('$.backends: no backends configured: the proxy cannot become healthy');
  if (config.routes === null) return warnings;
  const table = new RouteTable(config.routes);
  const indexOf = (name: string) => table.routes.findIndex((route) => route.name === name);
  return warnings.concat(
    table
      .unreachable()
      .map(
        ({ route, shadowedBy }) =>
          `$.routes[${indexOf(route)}]: route "${route}" is unreachable: route "${shadowedBy}" before it matches every request it would`,
      ),
  );
}

export async function main(argv: readonly string[], earlySignals: EarlySignals): Promise<number> {
  if (isSubcommand(argv)) return runSubcommand(argv, earlySignals);
  let cli: CliOptions;
  let config: Config;
  try {
    cli = parseCli(argv);
    if (cli.help) {
      process.stdout.write(usage);
      return 0;
    }
    if (cli.version) {
      process.stdout.write(`sluice ${version}\n`);
      return 0;
    }
    config = loadConfig(cli);
  } catch (error) {
    return refuse(error);
  }
  if (cli.testOnly) {
    try {
      checkRunnable(config, cli);
    } catch (error) {
      return refuse(error);
    }
    for (const warning of configWarnings(config, cli)) process.stderr.write(`sluice: warning: ${warning}\n`);
    process.stdout.write(`sluice: configuration ${cli.config ?? '(defaults)'} is valid\n`);
    return 0;
  }
  if (cli.daemon) {
    let logFile: string;
    try {
      logFile = daemonLogFile(config, configSource(cli));
    } catch (error) {
      return refuse(error);
    }
    return startDaemon(
      argv,
      logFile,
      (line) => process.stdout.write(`${line}\n`),
      (line) => process.stderr.write(`${line}\n`),
    );
  }

  let demo: DemoUpstreams | undefined;
  if (cli.demo) {
    // Loaded for the demo only: it brings node:http into the main thread, which a proxy run does not need.
    demo = await (await import('../demo/upstreams.ts')).startDemoUpstreams();
    config = { ...config, backends: [...config.backends, ...demo.backends] };
  }
  const tty = stdoutIsTTY();
  const logOptions = { ...config.log, format: resolveLogFormat(config.log.format, tty, config.log.file) };
  // The worker threads log to the file only; the terminal gets the lifecycle from this thread.
  const logger = createLogger(
    { ...logOptions, echo: echoFormat(config.log.format, tty, config.log.file) },
    { actor: 'supervisor' },
  );
  if (demo) logger.info({ backends: demo.backends }, 'demo upstreams started');
  const demoBackends = demo?.backends ?? [];
  const reloadConfig =
    cli.config === undefined
      ? undefined
      : () => {
          const fresh = loadConfig(cli);
          return { ...fresh, backends: [...fresh.backends, ...demoBackends] };
        };
  const parent = waitingParent();
  const admin = config.admin;
  const supervisor = new Supervisor({
    config,
    reloadConfig,
    logOptions,
    logger,
    handleSignals: true,
    restartCommand: sluiceCommand(argv),
    inherited: takeInheritedSockets(),
    ticketKeys: takeTicketKeys(),
    configFile: cli.config === undefined ? null : resolve(cli.config),
    // Loaded only when configured: it brings prom-client and the dashboard with it.
    ...(admin && { admin: async (view) => new (await import('../admin/server.ts')).AdminServer(view, admin, logger) }),
    waitingParent: parent,
  });
  for (const signal of earlySignals.take()) supervisor.stop(signal);
  const { exitCode, error } = await supervisor.run();
  if (exitCode !== 0) {
    const failure = error?.message ?? `exit code ${exitCode}`;
    // A waiting parent (`-d`, a hot restart's predecessor) prints it; in the foreground, the run says it last itself.
    const wasHealthy = supervisor.history.some((record) => record.to === 'healthy');
    if (parent) parent.failed(failure);
    else {
      const summary = wasHealthy ? `sluice: stopped after a failure: ${failure}` : failedToStartLine(failure);
      process.stderr.write(`${summary}\n`);
    }
  }
  await demo?.close();
  return exitCode;
}
