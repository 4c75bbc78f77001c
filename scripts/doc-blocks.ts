/**
 * Generated blocks in the docs: `<!-- include: examples/x.ts -->` … `<!-- /include -->`
 * is replaced by the file's text in a fenced block, so the examples shown are
 * exactly the programs the tests run.
 */
import { readFileSync } from 'node:fs';

const INCLUDE = /<!-- include: (\S+) -->\n[\s\S]*?<!-- \/include -->/g;

const fenceFor = (path: string) => (path.endsWith('.sh') ? 'bash' : path.endsWith('.json') ? 'json' : 'ts');

export function withIncludes(markdown: string, root: URL): string {
  return markdown.replace(INCLUDE, (_, path: string) => {
    const text = readFileSync(new URL(path, root), 'utf8').trimEnd();
    return `<!-- include: ${path} -->\n\`\`\`${fenceFor(path)}\n${text}\n\`\`\`\n<!-- /include -->`;
  });
}

export function includedPaths(markdown: string): string[] {
  return [...markdown.matchAll(INCLUDE)].map((match) => match[1]!);
}
