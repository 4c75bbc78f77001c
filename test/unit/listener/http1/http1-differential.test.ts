/**
 * The fast path's HTTP/1.1 parsers against llhttp (Node's http server and
 * client, and undici), on generated requests and responses: a child process
 * with --expose-internals runs test/support/http1-fuzz.ts for several seeds.
 * Any input one parser accepts and the other refuses, or frames differently,
 * fails the test with the input shown.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const fuzz = fileURLToPath(new URL('../../../support/http1-fuzz.ts', import.meta.url));

interface Report {
  requests: {
    cases: number;
    accepted: number;
    handedOff: number;
    llhttpRejected: number;
    chunkedComplete: number;
    chunkedInvalid: number;
    mismatches: string[];
  };
  responses: { cases: number; accepted: number; rejected: number; mismatches: string[] };
}

for (const seed of [1, 2, 3, 4]) {
  test(`seed ${seed}: 10,000 requests and 10,000 responses, no disagreement with llhttp`, async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--expose-internals', '--no-warnings', fuzz, String(seed), '10000'],
      { timeout: 60_000 },
    );
    const report = JSON.parse(stdout) as Report;
    assert.equal(report.requests.mismatches, [], 'requests');
    assert.equal(report.responses.mismatches, [], 'responses');
    // The generator must reach both sides of each verdict, or the comparison proves little.
    assert.ok(report.requests.accepted > 1_000, `fast path accepted ${report.requests.accepted}`);
    assert.ok(report.requests.handedOff > 1_000 && report.requests.llhttpRejected > 1_000);
    assert.ok(
      report.requests.chunkedComplete > 100 && report.requests.chunkedInvalid > 20,
      `chunked bodies: ${report.requests.chunkedComplete} whole, ${report.requests.chunkedInvalid} broken`,
    );
    assert.ok(report.responses.accepted > 1_000 && report.responses.rejected > 1_000);
  });
}

test.run();
