import { HEALTH_PATH } from './upstream.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const tempDir = (prefix = 'sluice-test-') => mkdtempSync(join(tmpdir(), prefix));

/** Writes `document` as JSON (or as-is when it is a string) to a fresh temp folder; returns the path. */
export function writeConfig(document: unknown, name = 'config.json'): string {
  const file = join(tempDir(), name);
  writeFileSync(file, typeof document === 'string' ? document : JSON.stringify(document, null, 2));
  return file;
}

/** A config for tests: port 0, loopback, fast health checks. */
export function testConfig(
  backends: { port: number; weight?: number }[],
  proxy: Record<string, unknown> = {},
  healthCheck: Record<string, unknown> = {},
) {
  return {
    proxy: { listen_host: '127.0.0.1', listen_port: 0, workers: 2, startup_timeout_ms: 5_000, ...proxy },
    health_check: {
      path: HEALTH_PATH,
      interval_ms: 100,
      timeout_ms: 500,
      healthy_threshold: 1,
      unhealthy_threshold: 1,
      ...healthCheck,
    },
    backends: backends.map((b) => ({ address: '127.0.0.1', port: b.port, weight: b.weight ?? 1 })),
  };
}
