/** Which format a log destination gets: a file its configured one, a terminal pretty. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { echoFormat, resolveLogFormat } from '../../src/log.ts';

test('the format choice: a file gets the configured format, stdout is pretty on a terminal', () => {
  assert.is(resolveLogFormat('json', true, '/var/log/sluice.log'), 'json');
  assert.is(resolveLogFormat('pretty', false, '/var/log/sluice.log'), 'pretty');
  assert.is(resolveLogFormat('json', true, null), 'pretty');
  assert.is(resolveLogFormat('json', false, null), 'json');
  assert.is(echoFormat('json', true, '/nonexistent/sluice.log'), 'pretty', 'the terminal beside a file: pretty');
  assert.is(echoFormat('json', false, '/nonexistent/sluice.log'), 'json');
  assert.is(echoFormat('json', true, null), undefined, 'no file: stdout is the log already');
});

test.run();
