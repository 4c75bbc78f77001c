// One listener's HTTP server in the main thread, with no pool, health-checker
// or supervisor threads around it: the fast path alone, for instruction counts
// (bench/instructions.sh). The backend is taken as healthy without a probe.
import pino from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { newCounterBuffer } from '../../src/listener/connections.ts';
import { ListenerServer } from '../../src/listener/server.ts';
import { InFlight } from '../../src/pool/balancers/in-flight.ts';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number) as [number, number];
// SOLO_PROXY: more `proxy` keys as JSON, to profile a setting against the default (`{"request_id_header":null}`);
// SOLO_CONFIG: more top-level keys (`{"access_log":{"file":"/tmp/a.log"}}`).
const extraProxy = JSON.parse(process.env['SOLO_PROXY'] ?? '{}') as Record<string, unknown>;
const extraConfig = JSON.parse(process.env['SOLO_CONFIG'] ?? '{}') as Record<string, unknown>;
const config = parseConfig(
  {
    proxy: { listen_host: '127.0.0.1', listen_port: listenPort, workers: 1, max_connections: 30000, ...extraProxy },
    backends: [{ address: '127.0.0.1', port: upstreamPort }],
    ...extraConfig,
  },
  'solo-listener',
);
const backend = config.backends[0]!;
// No pool thread here to hear passive health reports: they are dropped.
const dropPassiveReport = (): void => undefined;
const server = new ListenerServer(
  config,
  { connections: newCounterBuffer(), inFlight: InFlight.buffer(1) },
  pino({ level: 'warn' }),
  dropPassiveReport,
);
server.applySnapshot({
  version: 1,
  backends: [
    {
      ...backend,
      upstream: 'default',
      id: `${backend.address}:${backend.port}`,
      healthy: true,
      ejected: false,
      selectable: true,
      slot: 0,
    },
  ],
});
server.setStatus({ state: 'healthy', poolHealthy: true });
const bound = await server.bind([listenPort]);
if (!bound.ok) throw new Error(`cannot listen on ${listenPort}: ${JSON.stringify(bound)}`);
// A clean exit on SIGTERM, so that callgrind (or --cpu-prof) writes its profile.
process.on('SIGTERM', () => process.exit(0));
