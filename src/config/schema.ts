/**
 * The config file's shape, its defaults and its limits, in one place.
 * Keys are snake_case like the seed's config.json, which loads unchanged.
 * Every object is strict: an unknown key is an error that names it.
 */
import { z } from 'zod';

const port = z.int().min(0).max(65535);
const millis = z.int().min(0).max(24 * 60 * 60 * 1000);
const urlPath = z.string().startsWith('/');
const optionalPath = urlPath.nullable();

export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const proxySchema = z.strictObject({
  listen_host: z.string().min(1).default('0.0.0.0'),
  listen_port: port.default(8080),
  max_connections: z.int().min(1).default(10000),
  /** 0 = one listener thread per available CPU. */
  workers: z.int().min(0).max(256).default(0),
  startup_timeout_ms: millis.default(10000),
  grace_period_ms: millis.default(0),
  drain_timeout_ms: millis.default(30000),
  pid_file: z.string().min(1).nullable().default(null),
  health_path: optionalPath.default('/health'),
  ready_path: optionalPath.default('/ready'),
  live_path: optionalPath.default('/live'),
  upstream_connect_timeout_ms: millis.min(1).default(5000),
  upstream_timeout_ms: millis.min(1).default(60000),
  /** Request headers must be complete within this (slowloris): 408, connection closed. */
  client_header_timeout_ms: millis.min(100).default(10000),
  /** An idle keep-alive client connection is closed after this. */
  client_keepalive_timeout_ms: millis.min(100).default(5000),
  /** A module of per-request hooks, loaded in every listener thread; relative to the config file. */
  request_hooks: z.string().min(1).nullable().default(null),
  /** Serve plain requests with sluice's own HTTP/1.1 codec (off: everything through Node's http server). */
  fast_path: z.boolean().default(true),
});

const statusCode = z.int().min(100).max(599);
/** `200`, `[200, 204]` or `"200-399"`: the statuses an HTTP health check accepts. */
export const expectedStatusSchema = z.union([
  statusCode,
  z.array(statusCode).min(1),
  z.string().regex(/^[1-5]\d\d-[1-5]\d\d$/, 'expected a range like "200-399"'),
]);

export const passiveHealthSchema = z.strictObject({
  /** Consecutive connect errors, resets or timeouts seen by the listeners that eject a backend. */
  failures: z.int().min(1).max(1000).default(5),
  ejection_ms: millis.min(1).default(10000),
});

export const healthCheckSchema = z.strictObject({
  type: z.enum(['http', 'tcp']).default('http'),
  path: urlPath.default('/'),
  expected_status: expectedStatusSchema.default('200-399'),
  host: z.string().min(1).nullable().default(null),
  interval_ms: millis.min(10).default(2000),
  timeout_ms: millis.min(1).default(1000),
  healthy_threshold: z.int().min(1).max(100).default(1),
  unhealthy_threshold: z.int().min(1).max(100).default(2),
  min_healthy: z.int().min(1).default(1),
  passive: passiveHealthSchema.nullable().default(null),
});

export const balancingAlgorithms = ['weighted_round_robin', 'least_connections', 'random', 'consistent_hash'] as const;

export const loadBalancingSchema = z
  .strictObject({
    algorithm: z.enum(balancingAlgorithms).default('weighted_round_robin'),
    /** For consistent_hash: `client_ip`, `path`, `header:NAME` or `cookie:NAME`. */
    hash_key: z
      .string()
      .regex(/^(client_ip|path|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[^\s;=,]+)$/, 'expected client_ip, path, header:NAME or cookie:NAME')
      .default('client_ip'),
  });

export const backendSchema = z.strictObject({
  address: z.string().min(1),
  port: port.min(1),
  weight: z.int().min(1).max(1000).default(1),
  /** `false`: kept and probed, never chosen — the manual drain of one backend. */
  enabled: z.boolean().default(true),
});

export const logSchema = z.strictObject({
  level: z.enum(logLevels).default('info'),
  format: z.enum(['json', 'pretty']).default('json'),
  file: z.string().min(1).nullable().default(null),
});

export const adminSchema = z.strictObject({
  listen_host: z.string().min(1).default('127.0.0.1'),
  listen_port: port.default(9901),
  /** When set, every admin request needs `Authorization: Bearer <token>`. */
  token: z.string().min(1).nullable().default(null),
});

export const configSchema = z.strictObject({
  proxy: proxySchema.prefault({}),
  health_check: healthCheckSchema.prefault({}),
  load_balancing: loadBalancingSchema.prefault({}),
  backends: z.array(backendSchema).default([]),
  log: logSchema.prefault({}),
  /** The admin listener (status, metrics, events, dashboard); off unless configured. */
  admin: adminSchema.nullable().default(null),
});

export type Config = z.infer<typeof configSchema>;
export type BalancingAlgorithm = (typeof balancingAlgorithms)[number];
export type ConfigInput = z.input<typeof configSchema>;
export type LogLevel = (typeof logLevels)[number];
