/**
 * The package's entry point (`import ... from 'sluice'`), plain JavaScript so
 * that any Node.js can read it. In a clone of the repository it loads the
 * TypeScript sources (Node 24 strips their types), so the examples and the
 * README run as shown, without a build and never against a stale one. In
 * the installed package, which ships dist/ and not src/ (and Node will not
 * strip types under node_modules anyway), it loads the built JavaScript.
 * `require('sluice')` goes to dist/ directly (package.json "exports").
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

if (Number(process.versions.node.split('.')[0]) < 24) {
  throw new Error(`sluice needs Node.js 24 or newer (this is ${process.version})`);
}

const source = new URL('./src/index.ts', import.meta.url);
const fromSource = existsSync(source) && !fileURLToPath(import.meta.url).includes('/node_modules/');
const sluice = await import(fromSource ? source.href : new URL('./dist/index.js', import.meta.url).href);

// Every value src/index.ts exports (test/integration/package.test.ts checks the list is complete).
export const {
  HttpProxy,
  lifecycleMachine,
  exitCodeOf,
  transitionInspector,
  errorCodes,
  SluiceError,
  ConfigError,
  UsageError,
  PidFileLockedError,
  StartupTimeout,
  ListenError,
  WorkerFailedError,
  AlreadyServingError,
  UnknownBackendError,
  loadConfig,
} = sluice;
