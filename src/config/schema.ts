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

export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

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
});

export const healthCheckSchema = z.strictObject({
  type: z.enum(['http', 'tcp']).default('http'),
  path: urlPath.default('/'),
  interval_ms: millis.min(10).default(2000),
  timeout_ms: millis.min(1).default(1000),
  healthy_threshold: z.int().min(1).max(100).default(1),
  unhealthy_threshold: z.int().min(1).max(100).default(2),
});

export const backendSchema = z.strictObject({
  address: z.string().min(1),
  port: port.min(1),
  weight: z.int().min(1).max(1000).default(1),
});

export const logSchema = z.strictObject({
  level: z.enum(logLevels).default('info'),
  format: z.enum(['json', 'pretty']).default('json'),
  file: z.string().min(1).nullable().default(null),
});

export const configSchema = z.strictObject({
  proxy: proxySchema.prefault({}),
  health_check: healthCheckSchema.prefault({}),
  backends: z.array(backendSchema).default([]),
  log: logSchema.prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type LogLevel = (typeof logLevels)[number];
