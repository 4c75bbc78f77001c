/** `npm run docs`: regenerate the lifecycle diagram in docs/lifecycle.md from the machine. */
import { readFileSync, writeFileSync } from 'node:fs';
import { lifecycleMachine } from '../src/machines/lifecycle.ts';
import { mermaidStateDiagram, withDiagram } from '../src/machines/diagram.ts';

const file = new URL('../docs/lifecycle.md', import.meta.url);
const before = readFileSync(file, 'utf8');
const after = withDiagram(before, mermaidStateDiagram(lifecycleMachine));
writeFileSync(file, after);
console.log(before === after ? 'docs/lifecycle.md: diagram already up to date' : 'docs/lifecycle.md: diagram regenerated');
