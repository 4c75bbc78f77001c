// The seed's "Basic Startup": initialise, add a backend, serve.
import { HttpProxy } from 'sluice';

const [address = '127.0.0.1', port] = (process.env['SLUICE_EXAMPLE_BACKEND'] ?? '127.0.0.1:3000').split(':');

const proxy = HttpProxy.init({
  listen_port: Number(process.env['SLUICE_EXAMPLE_PORT'] ?? 8080),
  max_connections: 10000,
  handleSignals: true, // SIGTERM/SIGINT drain and stop, as the sluice command does
});

await proxy.addBackend(address, Number(port), 1);

console.log(`Starting proxy on port ${proxy.config.listen_port}...`);
await proxy.serve(); // settles once the proxy has stopped
