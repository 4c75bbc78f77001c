/** Documentation that is checked against the code it describes. */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lifecycleMachine } from '../src/machines/lifecycle.ts';
import { mermaidStateDiagram, withDiagram } from '../src/machines/diagram.ts';
import { configSchema } from '../src/config/schema.ts';
import { errorCodes } from '../src/errors.ts';
import { requestFailureCodes } from '../src/listener/failures.ts';
import { includedPaths, withIncludes } from '../scripts/doc-blocks.ts';
import { readdirSync } from 'node:fs';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

test('docs/lifecycle.md carries the diagram the machine draws (run `npm run docs` after changing the machine)', () => {
  const committed = read('docs/lifecycle.md');
  assert.is(committed, withDiagram(committed, mermaidStateDiagram(lifecycleMachine)));
});

test('the diagram shows every state and every delay', () => {
  const diagram = mermaidStateDiagram(lifecycleMachine);
  for (const word of ['starting', 'healthy', 'draining', 'stopped', 'startupTimeout', 'gracePeriod', 'drainTimeout', 'CONNECTIONS_DRAINED']) {
    assert.match(diagram, word);
  }
});

test('docs/configuration.md documents every config key', () => {
  const doc = read('docs/configuration.md');
  for (const [section, schema] of Object.entries(configSchema.shape)) {
    assert.match(doc, `\`${section}\``);
    const inner = (schema as unknown as { def: { innerType?: { shape?: object; def?: { element?: { shape?: object } } } } }).def.innerType;
    const shape = inner?.shape ?? inner?.def?.element?.shape ?? {};
    for (const key of Object.keys(shape)) assert.match(doc, `\`${key}\``, `${section}.${key} is not documented`);
  }
});

for (const doc of ['docs/embedding.md', 'docs/testing.md']) {
  test(`${doc} shows the example files as they are (run \`npm run docs\` after changing one)`, () => {
    const committed = read(doc);
    assert.is(committed, withIncludes(committed, new URL('../', import.meta.url)));
  });
}

test('every program in examples/ is shown in the docs', () => {
  const shown = new Set([...includedPaths(read('docs/embedding.md')), ...includedPaths(read('docs/testing.md'))]);
  const files = readdirSync(new URL('../examples/', import.meta.url)).map((f) => `examples/${f}`);
  assert.equal(files.filter((f) => !shown.has(f)), []);
});

test('docs/errors.md lists every error code', () => {
  const doc = read('docs/errors.md');
  for (const code of Object.keys(errorCodes)) assert.match(doc, `\`${code}\``, `${code} is missing from docs/errors.md`);
});

test('docs/errors.md lists every request failure code the access log can show', () => {
  const doc = read('docs/errors.md');
  for (const code of Object.keys(requestFailureCodes)) assert.match(doc, `\`${code}\``, `${code} is missing from docs/errors.md`);
});

test('the README keeps the two setup commands word for word', () => {
  const readme = read('README.md');
  assert.match(readme, 'npm install && npm start');
  assert.match(readme, 'npm install && npm test');
});

test.run();
