/** Documentation that is checked against the code it describes. */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lifecycleMachine } from '../../src/machines/lifecycle.ts';
import { mermaidStateDiagram, withDiagram } from '../../src/machines/diagram.ts';
import { configSchema } from '../../src/config/schema.ts';
import { errorCodes } from '../../src/errors.ts';
import { requestFailureCodes } from '../../src/listener/failures.ts';
import { includedPaths, withIncludes } from '../../scripts/doc-blocks.ts';
import { readdirSync } from 'node:fs';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

test('docs/lifecycle.md carries the diagram the machine draws (run `npm run docs` after changing the machine)', () => {
  const committed = read('docs/lifecycle.md');
  assert.is(committed, withDiagram(committed, mermaidStateDiagram(lifecycleMachine)));
});

test('the diagram shows every state and every delay', () => {
  const diagram = mermaidStateDiagram(lifecycleMachine);
  for (const word of [
    'starting',
    'healthy',
    'draining',
    'stopped',
    'startupTimeout',
    'gracePeriod',
    'drainTimeout',
    'CONNECTIONS_DRAINED',
  ]) {
    assert.match(diagram, word);
  }
});

test('docs/configuration.md documents every config key', () => {
  const doc = read('docs/configuration.md');
  for (const [section, schema] of Object.entries(configSchema.shape)) {
    assert.match(doc, `\`${section}\``);
    const inner = (
      schema as unknown as { def: { innerType?: { shape?: object; def?: { element?: { shape?: object } } } } }
    ).def.innerType;
    const shape = inner?.shape ?? inner?.def?.element?.shape ?? {};
    for (const key of Object.keys(shape)) assert.match(doc, `\`${key}\``, `${section}.${key} is not documented`);
  }
});

for (const doc of ['docs/embedding.md', 'docs/testing.md']) {
  test(`${doc} shows the example files as they are (run \`npm run docs\` after changing one)`, () => {
    const committed = read(doc);
    assert.is(committed, withIncludes(committed, new URL('../../', import.meta.url)));
  });
}

test('every program in examples/ is shown in the docs', () => {
  const shown = new Set([...includedPaths(read('docs/embedding.md')), ...includedPaths(read('docs/testing.md'))]);
  const files = readdirSync(new URL('../../examples/', import.meta.url)).map((f) => `examples/${f}`);
  assert.equal(
    files.filter((f) => !shown.has(f)),
    [],
  );
});

test('docs/errors.md lists every error code', () => {
  const doc = read('docs/errors.md');
  for (const code of Object.keys(errorCodes))
    assert.match(doc, `\`${code}\``, `${code} is missing from docs/errors.md`);
});

test('docs/errors.md lists every request failure code the access log can show', () => {
  const doc = read('docs/errors.md');
  for (const code of Object.keys(requestFailureCodes))
    assert.match(doc, `\`${code}\``, `${code} is missing from docs/errors.md`);
});

test("examples and docs use sluice's names and loopback, not the seed's PID file and LAN address", () => {
  const files = [
    'README.md',
    ...readdirSync(new URL('../../docs/', import.meta.url)).map((f) => `docs/${f}`),
    ...readdirSync(new URL('../../examples/', import.meta.url)).map((f) => `examples/${f}`),
  ];
  // decisions.md records what the seed said, on purpose.
  for (const file of files.filter((f) => f !== 'docs/decisions.md')) {
    for (const word of ['pingora.pid', '192.168.']) assert.not.match(read(file), word, `${file} has ${word}`);
  }
});

test('"the seed" is defined where each doc first uses it', () => {
  for (const doc of ['README.md', 'docs/configuration.md', 'docs/embedding.md']) {
    const text = read(doc);
    const first = text.search(/\bseed\b/i);
    const definition = text.indexOf('*The seed* is');
    assert.ok(definition !== -1 && definition - first < 500, `${doc}: no definition near its first "seed"`);
  }
});

test('docs/configuration.md lists every command', () => {
  const doc = read('docs/configuration.md');
  for (const command of ['status', 'stop', 'reload', 'restart']) assert.match(doc, `node src/main.ts ${command} [`);
});

test('the README keeps the two setup commands word for word', () => {
  const readme = read('README.md');
  assert.match(readme, 'npm install && npm start');
  assert.match(readme, 'npm install && npm test');
});

test.run();
