/** How the command line reports a usage or config error: one line on stderr per problem, exit code 2. */
import { SluiceError } from '../errors.ts';

export function refuse(error: unknown): number {
  if (!(error instanceof SluiceError)) throw error;
  const usageHint = error.code === 'SLUICE_USAGE' ? " (see 'sluice --help')" : '';
  for (const line of error.message.split('\n')) process.stderr.write(`sluice: ${line}${usageHint}\n`);
  return 2;
}
