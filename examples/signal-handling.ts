// The seed's "Signal Handling": run until SIGTERM or SIGINT, then shut down.
import { HttpProxy } from 'sluice';

const [address = '127.0.0.1', port] = (process.env['SLUICE_EXAMPLE_BACKEND'] ?? '127.0.0.1:3000').split(':');
const proxy = HttpProxy.init({ listen_port: Number(process.env['SLUICE_EXAMPLE_PORT'] ?? 8080) });
await proxy.addBackend(address, Number(port), 1);

// Instead of a `running` flag polled by a loop, the signal starts the stop.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    console.log('Shutting down...');
    void proxy.shutdown();
  });
}

// Run until the signal: serve() settles once the proxy has stopped.
await proxy.serve();
