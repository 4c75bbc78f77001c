/**
 * The config file's shape, its defaults and its limits, in one place.
 * Keys are snake_case like the seed's config.json, which loads unchanged.
 * Every object is strict: an unknown key is an error that names it.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
// In a file without zod: worker threads need them, and zod costs every thread that loads it.
import { MIN_DNS_REFRESH_MS, PROTECTED_HEADERS } from './limits.ts';

export { MIN_DNS_REFRESH_MS, PROTECTED_HEADERS };

const port = z.int().min(0).max(65535);
const millis = z
  .int()
  .min(0)
  .max(24 * 60 * 60 * 1000);
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
  /** `false`: healthy once the listeners are bound, with or without a healthy backend (502 until one passes). */
  require_healthy_backends: z.boolean().default(true),
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
  /** Carries each request's id up and back (a new one when the client sent none); `null`: off. */
  request_id_header: z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected a header name')
    .refine(
      (name) => name.toLowerCase() !== 'host' && !(PROTECTED_HEADERS as readonly string[]).includes(name.toLowerCase()),
      'a framing, connection or Host header cannot carry the request id',
    )
    .transform((name) => name.toLowerCase())
    .nullable()
    .default('x-request-id'),
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

/** Each field once, without its default: the top-level section adds defaults, an upstream's override leaves them out. */
const healthCheckFields = {
  type: z.enum(['http', 'tcp']),
  path: urlPath,
  expected_status: expectedStatusSchema,
  host: z.string().min(1).nullable(),
  interval_ms: millis.min(10),
  timeout_ms: millis.min(1),
  healthy_threshold: z.int().min(1).max(100),
  unhealthy_threshold: z.int().min(1).max(100),
  min_healthy: z.int().min(1),
  passive: passiveHealthSchema.nullable(),
};

export const healthCheckSchema = z.strictObject({
  type: healthCheckFields.type.default('http'),
  path: healthCheckFields.path.default('/'),
  expected_status: healthCheckFields.expected_status.default('200-399'),
  host: healthCheckFields.host.default(null),
  interval_ms: healthCheckFields.interval_ms.default(2000),
  timeout_ms: healthCheckFields.timeout_ms.default(1000),
  healthy_threshold: healthCheckFields.healthy_threshold.default(1),
  unhealthy_threshold: healthCheckFields.unhealthy_threshold.default(2),
  min_healthy: healthCheckFields.min_healthy.default(1),
  passive: healthCheckFields.passive.default(null),
});

/** An upstream's own health_check: the keys it leaves out come from the top-level section. */
export const healthCheckOverrideSchema = z.strictObject(healthCheckFields).partial();

export const balancingAlgorithms = ['weighted_round_robin', 'least_connections', 'random', 'consistent_hash'] as const;

const algorithmField = z.enum(balancingAlgorithms);
/** For consistent_hash: `client_ip`, `path`, `header:NAME` or `cookie:NAME`. */
const hashKeyField = z
  .string()
  .regex(
    /^(client_ip|path|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[^\s;=,]+)$/,
    'expected client_ip, path, header:NAME or cookie:NAME',
  );

export const loadBalancingSchema = z.strictObject({
  algorithm: algorithmField.default('weighted_round_robin'),
  hash_key: hashKeyField.default('client_ip'),
});

export const loadBalancingOverrideSchema = z
  .strictObject({ algorithm: algorithmField, hash_key: hashKeyField })
  .partial();

/**
 * A host name or an IP address, as nginx's `server` takes it in an upstream:
 * no scheme and no path (`http://127.0.0.1` would be looked up as a host
 * name and fail at every probe), and the port in its own key.
 */
function backendAddressProblem(address: string): string | undefined {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(address))
    return 'expected a host name or IP address, not a URL: leave out the scheme';
  if (address.includes('/')) return 'expected a host name or IP address, without a path';
  if (address.split(':').length === 2) return 'expected a host name or IP address: the port goes in "port"';
  return undefined;
}

const backendAddress = z
  .string()
  .min(1)
  .check((ctx) => {
    const problem = backendAddressProblem(ctx.value);
    if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value, path: [] });
  });

/** The name sluice asks a TLS backend for (SNI) and checks its certificate against: a host name. */
const upstreamServerName = z.string().check((ctx) => {
  const problem = ctx.value.startsWith('*.') ? 'expected a host name, not a wildcard' : serverNameProblem(ctx.value);
  if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value, path: [] });
});

/** TLS to a backend, on the backend or on its upstream group (the backend's own wins). */
export const upstreamTlsSchema = z.strictObject({
  /** null: the backend's address (sent as SNI only when it is a host name). */
  servername: upstreamServerName.nullable().default(null),
  /** PEM file of the CAs that sign the backends' certificates, relative to the config file; null: Node's roots. */
  ca: z.string().min(1).nullable().default(null),
  /** false: the certificate is not checked (encrypted, not authenticated). */
  verify: z.boolean().default(true),
});

export const backendSchema = z.strictObject({
  address: backendAddress,
  port: port.min(1),
  weight: z.int().min(1).max(1000).default(1),
  /** `false`: kept and probed, never chosen — the manual drain of one backend. */
  enabled: z.boolean().default(true),
  /** TLS to this backend; absent or null: its upstream's `tls`, or plain. */
  tls: upstreamTlsSchema.nullable().optional(),
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

/** An upstream's name: shown in logs, metrics labels and `/status`. */
const upstreamName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected letters, digits, ".", "_" or "-"');

/** An upstream whose backends come from DNS: A and AAAA records on one port, or SRV records. */
export const discoverySchema = z
  .strictObject({
    dns: z.string().regex(/^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$/, 'expected a DNS name'),
    type: z.enum(['A', 'SRV']).default('A'),
    /** Type A: the port of every address. SRV records carry their own. */
    port: port.min(1).nullable().default(null),
    refresh_ms: millis.min(MIN_DNS_REFRESH_MS).default(5000),
  })
  .check((ctx) => {
    const { type, port: given } = ctx.value;
    if (type === 'A' && given === null) {
      ctx.issues.push({ code: 'custom', message: 'type "A" needs a port', input: given, path: ['port'] });
    }
    if (type === 'SRV' && given !== null) {
      ctx.issues.push({ code: 'custom', message: 'SRV records carry their own port', input: given, path: ['port'] });
    }
  });

export const upstreamSchema = z
  .strictObject({
    backends: z.array(backendSchema).default([]),
    /** Backends from DNS instead of a fixed list. */
    discovery: discoverySchema.nullable().default(null),
    health_check: healthCheckOverrideSchema.prefault({}),
    load_balancing: loadBalancingOverrideSchema.prefault({}),
    /** TLS to every backend of the group (DNS ones too) that has no `tls` of its own; null: plain. */
    tls: upstreamTlsSchema.nullable().default(null),
  })
  .check((ctx) => {
    if (ctx.value.discovery !== null && ctx.value.backends.length > 0) {
      const message = 'give backends or discovery, not both';
      ctx.issues.push({ code: 'custom', message, input: ctx.value.discovery, path: ['discovery'] });
    }
  });

/** `10.96.0.10:53` or `[fd00::10]:53`: Node's resolver takes addresses, not names. */
const dnsServer = z.string().refine((text) => {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(text);
  if (!match) return false;
  const address = match[1] ?? match[2]!;
  const portNumber = Number(match[3]);
  return isIP(address) === (match[1] ? 6 : 4) && portNumber >= 1 && portNumber <= 65535;
}, 'expected address:port, e.g. "10.96.0.10:53" or "[fd00::10]:53"');

export const dnsSchema = z.strictObject({
  /** Empty: the system's resolver configuration (/etc/resolv.conf). */
  servers: z.array(dnsServer).default([]),
  /** Per attempt, as Node's Resolver counts it; there are two attempts. */
  timeout_ms: millis.min(1).default(2000),
});

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected a header name');
// Visible ASCII and spaces only: a value with CR or LF would split the head it is written into.
const headerValue = z.string().regex(/^[\t\x20-\x7e]*$/, 'expected visible ASCII');
const methodName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected a method name');

const editableHeaderName = headerName.refine(
  (name) => !(PROTECTED_HEADERS as readonly string[]).includes(name.toLowerCase()),
  'framing and connection headers are written by sluice itself',
);

/** Names of a record's keys that are protected: an issue per name, on the key's own path. */
function protectedKeys(record: Record<string, string>, path: (string | number)[], issues: z.core.$ZodRawIssue[]): void {
  for (const name of Object.keys(record)) {
    if (!(PROTECTED_HEADERS as readonly string[]).includes(name.toLowerCase())) continue;
    issues.push({
      code: 'custom',
      message: 'framing and connection headers are written by sluice itself',
      input: name,
      path: [...path, name],
    });
  }
}

const headerEditsSchema = z
  .strictObject({
    set: z.record(headerName, headerValue).default({}),
    remove: z.array(editableHeaderName).default([]),
  })
  .check((ctx) => protectedKeys(ctx.value.set, ['set'], ctx.issues));

export const routeMatchSchema = z.strictObject({
  host: z
    .string()
    .regex(/^(\*\.)?[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$/, 'expected a host name or *.domain')
    .optional(),
  path_prefix: urlPath.optional(),
  path_exact: urlPath.optional(),
  methods: z.array(methodName).min(1).optional(),
  headers: z.record(headerName, headerValue).optional(),
});

export const routeSchema = z
  .strictObject({
    name: z.string().min(1).nullable().default(null),
    match: routeMatchSchema.prefault({}),
    upstream: upstreamName.nullable().default(null),
    respond: z
      .strictObject({
        status: z.int().min(200).max(599),
        body: z.string().default(''),
        headers: z.record(headerName, headerValue).default({}),
      })
      .check((ctx) => protectedKeys(ctx.value.headers, ['headers'], ctx.issues))
      .nullable()
      .default(null),
    strip_prefix: z.boolean().default(false),
    request_headers: headerEditsSchema.nullable().default(null),
    response_headers: headerEditsSchema.nullable().default(null),
    /** Responses of this route are stored in and served from the shared cache (needs the `cache` section). */
    cache: z.boolean().default(false),
  })
  .check((ctx) => {
    const route = ctx.value;
    if ((route.upstream === null) === (route.respond === null)) {
      ctx.issues.push({
        code: 'custom',
        message: 'a route needs exactly one of upstream or respond',
        input: route,
        path: [],
      });
    }
    if (route.strip_prefix && route.match.path_prefix === undefined) {
      ctx.issues.push({
        code: 'custom',
        message: 'strip_prefix needs match.path_prefix',
        input: route.strip_prefix,
        path: ['strip_prefix'],
      });
    }
  });

export const accessLogSchema = z.strictObject({
  /** `-`: standard output. Relative to the config file. */
  file: z.string().min(1),
  format: z.enum(['json', 'combined']).default('json'),
});

/**
 * A name a client sends in SNI: a host name, or `*.` and a domain (any name
 * under it, at any depth, as nginx's `*.example.org`). IP addresses are not
 * names: SNI never carries them.
 */
export function serverNameProblem(name: string): string | undefined {
  const host = name.startsWith('*.') ? name.slice(2) : name;
  if (isIP(host) !== 0) return 'SNI carries host names, not IP addresses';
  const label = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
  if (host.length > 253 || !host.split('.').every((part) => label.test(part)))
    return 'expected a host name or *.domain';
  return undefined;
}

const serverName = z
  .string()
  .check((ctx) => {
    const problem = serverNameProblem(ctx.value);
    if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value, path: [] });
  })
  .transform((name) => name.toLowerCase());

/** A certificate chain (PEM) and its private key; relative to the config file. */
const certificateFields = { cert: z.string().min(1), key: z.string().min(1) };

export const tlsSchema = z.strictObject({
  ...certificateFields,
  /** Other certificates, chosen by the name the client asks for (exact first, then the longest wildcard). */
  sni: z.array(z.strictObject({ server_names: z.array(serverName).min(1), ...certificateFields })).default([]),
  min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  session_tickets: z.boolean().default(true),
});

export const listenerSchema = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port,
  /** HTTP/2 beside HTTP/1.1: ALPN `h2` on a TLS listener, h2c with prior knowledge on a plain one. */
  http2: z.boolean().default(false),
  /** SETTINGS_MAX_CONCURRENT_STREAMS of each HTTP/2 connection (nginx's http2_max_concurrent_streams). */
  max_concurrent_streams: z
    .int()
    .min(1)
    .max(2 ** 31 - 1)
    .default(128),
  tls: tlsSchema.nullable().default(null),
});

/** The shared HTTP cache (src/cache/); off when the section is absent. Sizes in MiB. */
export const cacheSchema = z.strictObject({
  /** The LMDB store's directory, relative to the config file. */
  path: z.string().min(1),
  max_size_mb: z
    .int()
    .min(1)
    .max(1024 * 1024)
    .default(1024),
  max_object_mb: z.int().min(1).max(1024).default(16),
  /** How long concurrent misses for one key wait for the first one's response before going upstream themselves. */
  lock_timeout_ms: millis.default(5000),
});

export const configSchema = z
  .strictObject({
    proxy: proxySchema.prefault({}),
    health_check: healthCheckSchema.prefault({}),
    load_balancing: loadBalancingSchema.prefault({}),
    /** The upstream named `default`. */
    backends: z.array(backendSchema).default([]),
    upstreams: z.record(upstreamName, upstreamSchema).default({}),
    /** How upstreams with `discovery` are resolved. */
    dns: dnsSchema.prefault({}),
    /** Absent: every request goes to `default`. First match in file order wins. */
    routes: z.array(routeSchema).nullable().default(null),
    access_log: accessLogSchema.nullable().default(null),
    cache: cacheSchema.nullable().default(null),
    log: logSchema.prefault({}),
    /** The admin listener (status, metrics, events, dashboard); off unless configured. */
    admin: adminSchema.nullable().default(null),
    /** The sockets the proxy serves; absent: one plain listener on proxy.listen_host:listen_port. */
    listeners: z.array(listenerSchema).min(1).nullable().default(null),
  })
  .check((ctx) => {
    checkUpstreamReferences(ctx.value, ctx.issues);
    checkListenerPorts(ctx.value, ctx.issues);
    checkListenerAddresses(ctx.value, ctx.issues);
    checkServerNames(ctx.value, ctx.issues);
    ctx.value.routes?.forEach((route, index) => {
      if (route.cache && ctx.value.cache === null) {
        const message = 'cache: true needs the top-level cache section';
        ctx.issues.push({ code: 'custom', message, input: true, path: ['routes', index, 'cache'] });
      }
    });
  });

/** The part of the config the reference checks read. */
interface ConfigShape {
  backends: z.output<typeof backendSchema>[];
  upstreams: Record<string, z.output<typeof upstreamSchema>>;
  routes: z.output<typeof routeSchema>[] | null;
}

/**
 * What no single field can say: `default` given twice, a route naming an
 * upstream that does not exist, and one backend in two upstreams (a backend
 * is identified by `address:port` everywhere — health, passive ejection and
 * in-flight counts — so it belongs to one upstream).
 */
function checkUpstreamReferences(config: ConfigShape, issues: z.core.$ZodRawIssue[]): void {
  const names = new Set(Object.keys(config.upstreams));
  if (names.has('default') && config.backends.length > 0) {
    issues.push({
      code: 'custom',
      message: 'the upstream "default" is the top-level backends: give one or the other',
      input: config.upstreams['default'],
      path: ['upstreams', 'default'],
    });
  }
  names.add('default');
  config.routes?.forEach((route, index) => {
    if (route.upstream !== null && !names.has(route.upstream)) {
      issues.push({
        code: 'custom',
        message: 'no such upstream',
        input: route.upstream,
        path: ['routes', index, 'upstream'],
      });
    }
  });
  const owner = new Map<string, string>();
  const claim = (address: string, port: number, upstream: string, path: (string | number)[]) => {
    const id = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    const first = owner.get(id);
    if (first !== undefined) {
      // Twice in one upstream would double its weight behind the user's back: give it a weight instead.
      const message =
        first === upstream
          ? `${id} is listed twice in the upstream "${upstream}": give it one entry and a weight`
          : `${id} is already a backend of the upstream "${first}"`;
      issues.push({ code: 'custom', message, input: address, path });
    }
    owner.set(id, upstream);
  };
  config.backends.forEach((b, i) => claim(b.address, b.port, 'default', ['backends', i, 'address']));
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    upstream.backends.forEach((b, i) => claim(b.address, b.port, name, ['upstreams', name, 'backends', i, 'address']));
  }
}

/**
 * The admin listener on the proxy's own port would fail at start with
 * EADDRINUSE, after the PID file is written: say so before. A wildcard host
 * overlaps every host; port 0 (any free port) never collides.
 */
export function listenersOverlap(
  proxy: { listen_host: string; listen_port: number },
  admin: { listen_host: string; listen_port: number },
): boolean {
  if (proxy.listen_port === 0 || proxy.listen_port !== admin.listen_port) return false;
  const wildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '';
  return proxy.listen_host === admin.listen_host || wildcard(proxy.listen_host) || wildcard(admin.listen_host);
}

type ListenerShape = z.output<typeof listenerSchema>;
interface ListenerChecks {
  proxy: z.output<typeof proxySchema>;
  admin: z.output<typeof adminSchema> | null;
  listeners: ListenerShape[] | null;
}

/** The addresses the proxy listens on: `listeners`, or the one of `proxy`. */
export const listenAddresses = (config: Omit<ListenerChecks, 'admin'>) =>
  config.listeners?.map((l) => ({ listen_host: l.host, listen_port: l.port })) ?? [config.proxy];

function checkListenerPorts(config: ListenerChecks, issues: z.core.$ZodRawIssue[]): void {
  const admin = config.admin;
  if (!admin) return;
  const taken = listenAddresses(config).find((address) => listenersOverlap(address, admin));
  if (!taken) return;
  const proxy = `${taken.listen_host}:${taken.listen_port}`;
  issues.push({
    code: 'custom',
    message: `the proxy listens on ${proxy} already`,
    input: admin.listen_port,
    path: ['admin', 'listen_port'],
  });
}

/** Two listeners on one address would fail at start (or, with reusePort, share it by surprise). */
function checkListenerAddresses(config: ListenerChecks, issues: z.core.$ZodRawIssue[]): void {
  config.listeners?.forEach((listener, index, listeners) => {
    const earlier = listeners
      .slice(0, index)
      .findIndex((other) =>
        listenersOverlap(
          { listen_host: other.host, listen_port: other.port },
          { listen_host: listener.host, listen_port: listener.port },
        ),
      );
    if (earlier < 0) return;
    issues.push({
      code: 'custom',
      message: `listeners[${earlier}] listens on this port already`,
      input: listener.port,
      path: ['listeners', index, 'port'],
    });
  });
}

/** A name in two `sni` entries of one listener: which certificate it gets would depend on the order. */
function checkServerNames(config: ListenerChecks, issues: z.core.$ZodRawIssue[]): void {
  config.listeners?.forEach((listener, index) => {
    const seen = new Set<string>();
    listener.tls?.sni.forEach((entry, at) =>
      entry.server_names.forEach((name, nameAt) => {
        if (seen.has(name))
          issues.push({
            code: 'custom',
            message: 'this name is in an earlier sni entry already',
            input: name,
            path: ['listeners', index, 'tls', 'sni', at, 'server_names', nameAt],
          });
        seen.add(name);
      }),
    );
  });
}

export type Config = z.infer<typeof configSchema>;
export type BalancingAlgorithm = (typeof balancingAlgorithms)[number];
export type ConfigInput = z.input<typeof configSchema>;
export type HealthCheck = Config['health_check'];
export type LoadBalancing = Config['load_balancing'];
export type Discovery = z.output<typeof discoverySchema>;
export type DnsConfig = z.output<typeof dnsSchema>;
export type RouteSpec = z.output<typeof routeSchema>;
export type AccessLogConfig = z.output<typeof accessLogSchema>;
export type LogLevel = (typeof logLevels)[number];
export type ListenerConfig = z.output<typeof listenerSchema>;
export type TlsConfig = z.output<typeof tlsSchema>;
export type UpstreamTlsConfig = z.output<typeof upstreamTlsSchema>;
