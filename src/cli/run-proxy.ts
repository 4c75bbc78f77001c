/**
 * The proxy's run, once the command line has loaded and checked the config
 * (run.ts): the logger, the demo upstreams, the supervisor until it stops.
 * Loaded only then, so that the worker threads boot while it loads.
 */
import { resolve } from 'node:path';
import type { CliOptions } from './args.ts';
import type { Config } from '../config/schema.ts';
import { startDemoUpstreams, type DemoUpstreams } from '../demo/upstreams.ts';
import { createLogger, echoFormat, resolveLogFormat, stdoutIsTTY } from '../log.ts';
import { Supervisor } from '../supervisor/supervisor.ts';
import type { EarlySignals } from './early-signals.ts';
import { failedToStartLine, sluiceCommand } from './daemon.ts';
import { waitingParent } from '../supervisor/ready-channel.ts';
import { takeInheritedSockets } from '../supervisor/inherited-sockets.ts';
import { takeTicketKeys } from '../supervisor/ticket-key-handover.ts';

export interface ProxyRun {
  argv: readonly string[];
  cli: CliOptions;
  config: Config;
  earlySignals: EarlySignals;
  /** The config file read and checked again (SIGHUP). */
  reloadConfig: () => Config;
}

/** Runs the proxy until it stops; its exit code. */
export async function runProxy(run: ProxyRun): Promise<number> {
  const { argv, cli, earlySignals } = run;
  let config = run.config;
  let demo: DemoUpstreams | undefined;
  if (cli.demo) {
    demo = await startDemoUpstreams();
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
          const fresh = run.reloadConfig();
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
