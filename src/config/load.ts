/**
 * Reading a config file: size limit, JSON parse, schema validation, and
 * relative paths resolved against the file's folder. Every failure is a
 * ConfigError whose message is one line naming the file, the JSON path and
 * the offending value.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { configSchema, type Config } from './schema.ts';

export const MAX_CONFIG_BYTES = 1024 * 1024;

/** `['backends', 0, 'weight']` → `$.backends[0].weight` */
export function jsonPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, key) => (typeof key === 'number' ? `${out}[${key}]` : `${out}.${String(key)}`),
    '$',
  );
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** One line for the first issue, e.g. `$.proxy.listen_port: Too big: … (got 70000)`. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const [first] = issues;
  if (!first) return '$: invalid';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  if (first.code === 'unrecognized_keys') {
    const key = first.keys[0]!;
    const value = (first.input as Record<string, unknown> | undefined)?.[key];
    return `${jsonPath([...first.path, key])}: unknown key (got ${describeValue(value)})${more}`;
  }
  return `${jsonPath(first.path)}: ${first.message} (got ${describeValue(first.input)})${more}`;
}

/** Validate an already parsed document; `source` names it in errors. */
export function parseConfig(document: unknown, source: string, baseDir?: string): Config {
  const result = configSchema.safeParse(document, { reportInput: true });
  if (!result.success) throw new ConfigError(`${source}: ${describeIssues(result.error.issues)}`);
  return baseDir ? resolveRelativePaths(result.data, baseDir) : result.data;
}

export function loadConfigFile(file: string): Config {
  const path = resolve(file);
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_CONFIG_BYTES) {
      throw new ConfigError(`${path}: $: file is ${size} bytes, the limit is ${MAX_CONFIG_BYTES}`);
    }
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError(`${path}: $: cannot read the file (${code})`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path}: $: not valid JSON (${(error as Error).message})`);
  }
  return parseConfig(document, path, dirname(path));
}

export function resolveRelativePaths(config: Config, baseDir: string): Config {
  const at = (p: string | null) => (p === null ? null : resolve(baseDir, p));
  return {
    ...config,
    proxy: { ...config.proxy, pid_file: at(config.proxy.pid_file), request_hooks: at(config.proxy.request_hooks) },
    log: { ...config.log, file: at(config.log.file) },
    access_log: config.access_log && { ...config.access_log, file: config.access_log.file === '-' ? '-' : resolve(baseDir, config.access_log.file) },
  };
}
