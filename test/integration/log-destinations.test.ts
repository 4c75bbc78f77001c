/**
 * Where log lines go: a log file always gets `log.format` (JSON by default),
 * terminal or not; in the foreground the terminal still shows the main
 * thread's lifecycle lines; `-d` refuses to run without a file.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitWithin, killAll, repoRoot, startSluice, transitionTo } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

const main = join(repoRoot, 'src/main.ts');
const upstreams: TestUpstream[] = [];

test.after(async () => {
  killAll();
  await Promise.all(upstreams.map((u) => u.close()));
});

const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

test('foreground with log.file: the file gets every line as JSON, stdout the lifecycle lines', async () => {
  const a = await startUpstream('a');
  upstreams.push(a);
  const logFile = join(tempDir(), 'sluice.log');
  const proc = startSluice(['-c', writeConfig({ ...testConfig([{ port: a.port }]), log: { file: logFile } })]);
  await proc.waitForLog(transitionTo('healthy'));
  proc.kill('SIGTERM');
  assert.is((await exitWithin(proc)).code, 0);
  const inFile = jsonLines(readFileSync(logFile, 'utf8'));
  assert.ok(
    inFile.some((l) => l['actor'] === 'health-checker'),
    'the threads log to the file',
  );
  assert.ok(inFile.some((l) => l['msg'] === 'Shutdown complete'));
  const onStdout = proc.lines;
  assert.ok(onStdout.some((l) => l['to'] === 'draining' && l['actor'] === 'supervisor'));
  assert.ok(onStdout.some((l) => l.msg === 'Shutdown complete'));
  assert.ok(
    onStdout.every((l) => l['actor'] === 'supervisor'),
    'only the main thread: the threads stay in the file',
  );
});

// util-linux `script` runs the command on a pseudo-terminal: stdout.isTTY is true there.
const haveScript = spawnSync('script', ['--version']).status === 0;
(haveScript ? test : test.skip.bind(test))(
  'on a terminal with log.file: the file still gets JSON, the terminal pretty lines',
  async () => {
    const logFile = join(tempDir(), 'sluice.log');
    // A dead backend and a short startup timeout: the proxy ends by itself (exit 1).
    const config = writeConfig({
      ...testConfig([{ port: 1 }], { workers: 1, startup_timeout_ms: 300 }),
      log: { file: logFile },
    });
    const command = [process.execPath, main, '-c', config].map((arg) => `'${arg}'`).join(' ');
    const terminal = await new Promise<string>((resolve) => {
      execFile('script', ['-qec', command, '/dev/null'], { timeout: 20_000 }, (_error, stdout) => resolve(stdout));
    });
    assert.match(terminal, /INFO.*Starting proxy on port 0/);
    assert.match(terminal, /ERROR.*Failed to start: StartupTimeout/);
    assert.not.match(terminal, '{"level"');
    const inFile = jsonLines(readFileSync(logFile, 'utf8'));
    assert.ok(
      inFile.some((l) => l['msg'] === 'Shutdown complete' && l['exit_code'] === 1),
      readFileSync(logFile, 'utf8'),
    );
  },
);

test('-d without log.file: exit 2, nothing started', async () => {
  const dir = tempDir();
  const config = writeConfig(testConfig([{ port: 1 }], { pid_file: join(dir, 'sluice.pid') }));
  let result: { code: number; stderr: string };
  try {
    await promisify(execFile)(process.execPath, [main, '-d', '-c', config], { timeout: 10_000 });
    result = { code: 0, stderr: '' };
  } catch (error) {
    result = error as { code: number; stderr: string };
  }
  assert.is(result.code, 2);
  assert.match(result.stderr, `sluice: ${config}: $.log.file: daemon mode needs log.file`);
  assert.not.ok(existsSync(join(dir, 'sluice.pid')));
});

test.run();
