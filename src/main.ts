#!/usr/bin/env node
/**
 * `sluice` from the command line: parse flags, load and check the config,
 * then hand over to the supervisor and exit with the code it returns.
 * Exit codes: 0 stopped as asked, 1 runtime failure, 2 usage or config error.
 */
import { readFileSync } from 'node:fs';
import { applyCliOverrides, parseCli, usage, type CliOptions } from './cli/args.ts';
import { loadConfigFile, parseConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { startDemoUpstreams, type DemoUpstreams } from './demo/upstreams.ts';
import { SluiceError } from './errors.ts';
import { createLogger, resolveLogFormat } from './log.ts';
import { Supervisor } from './supervisor/supervisor.ts';

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function fail(error: unknown): never {
  const message = error instanceof SluiceError ? error.message : String((error as Error)?.message ?? error);
  const usageHint = error instanceof SluiceError && error.code === 'SLUICE_USAGE' ? " (see 'sluice --help')" : '';
  process.stderr.write(`sluice: ${message}${usageHint}\n`);
  process.exit(2);
}

function loadConfig(cli: CliOptions): Config {
  const fromFile = cli.config === undefined ? parseConfig({}, '(defaults)') : loadConfigFile(cli.config);
  return applyCliOverrides(fromFile, cli);
}

async function main(): Promise<number> {
  let cli: CliOptions;
  let config: Config;
  try {
    cli = parseCli(process.argv.slice(2));
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
    fail(error);
  }
  if (cli.testOnly) {
    process.stdout.write(`sluice: configuration ${cli.config ?? '(defaults)'} is valid\n`);
    return 0;
  }

  let demo: DemoUpstreams | undefined;
  if (cli.demo) {
    demo = await startDemoUpstreams();
    config = { ...config, backends: [...config.backends, ...demo.backends] };
  }
  const logOptions = { ...config.log, format: resolveLogFormat(config.log.format, process.stdout.isTTY === true) };
  const logger = createLogger(logOptions, { actor: 'supervisor' });
  if (demo) logger.info({ backends: demo.backends }, 'demo upstreams started');
  const supervisor = new Supervisor({ config, logOptions, logger, handleSignals: true });
  const exitCode = await supervisor.run();
  await demo?.close();
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`sluice: internal error: ${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
