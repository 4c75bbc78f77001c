#!/usr/bin/env node
/**
 * The `sluice` executable. Signal recording starts before anything heavy is
 * loaded, then Node's compile cache (cli/compile-cache.ts); then the command
 * line runs and its exit code ends the process.
 */
import { EarlySignals } from './cli/early-signals.ts';
import { enableCompileCache } from './cli/compile-cache.ts';

const earlySignals = new EarlySignals();
// Before anything else is loaded: on an older Node the rest fails with errors that do not say why.
if (Number(process.versions.node.split('.')[0]) < 24) {
  process.stderr.write(`sluice: needs Node.js 24 or newer (this is ${process.version})\n`);
  process.exit(1);
}
enableCompileCache();
try {
  const argv = process.argv.slice(2);
  // A subcommand (`sluice restart`, …) loads none of the proxy's code: it only talks to a running one.
  const { isSubcommand, runSubcommand } = await import('./cli/subcommands.ts');
  if (isSubcommand(argv)) process.exit(await runSubcommand(argv, earlySignals));
  const { main } = await import('./cli/run.ts');
  process.exit(await main(argv, earlySignals));
} catch (error) {
  process.stderr.write(`sluice: internal error: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
