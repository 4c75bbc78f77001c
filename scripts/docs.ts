/**
 * `npm run docs`: regenerate what the docs show from the code itself — the
 * lifecycle diagram from the machine, and the examples from examples/.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { lifecycleMachine } from '../src/machines/lifecycle.ts';
import { mermaidStateDiagram, withDiagram } from '../src/machines/diagram.ts';
import { withIncludes } from './doc-blocks.ts';

const root = new URL('../', import.meta.url);
const generators: Record<string, (markdown: string) => string> = {
  'docs/lifecycle.md': (markdown) => withDiagram(markdown, mermaidStateDiagram(lifecycleMachine)),
  'docs/embedding.md': (markdown) => withIncludes(markdown, root),
  'docs/testing.md': (markdown) => withIncludes(markdown, root),
};

for (const [path, generate] of Object.entries(generators)) {
  const file = new URL(path, root);
  const before = readFileSync(file, 'utf8');
  const after = generate(before);
  writeFileSync(file, after);
  console.log(`${path}: ${before === after ? 'up to date' : 'regenerated'}`);
}
