/** The program docs/testing.md shows runs as it is and passes. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

test('examples/testing-the-lifecycle.ts passes', async () => {
  const file = fileURLToPath(new URL('../../examples/testing-the-lifecycle.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 20_000 });
  assert.match(stdout, 'lifecycle example passed');
});

test.run();
