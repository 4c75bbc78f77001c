// The seed's "Command Line Arguments": -p/--port, -c/--config, -h/--help.
import { parseArgs } from 'node:util';
import { HttpProxy, loadConfig } from 'sluice';

function printUsage(): void {
  console.log(`Usage: pingora-proxy [OPTIONS]

Options:
  -p, --port PORT     Listen port (default: 8080)
  -c, --config FILE   Configuration file path
  -h, --help          Show this help
`);
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', short: 'p', default: '8080' },
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  printUsage();
} else {
  const config = values.config ? loadConfig(values.config) : undefined;
  const proxy = HttpProxy.init({
    ...config?.proxy,
    listen_port: Number(values.port),
    backends: config?.backends,
    handleSignals: true,
  });
  await proxy.serve();
}
