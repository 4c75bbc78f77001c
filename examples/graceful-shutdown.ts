// The seed's "Graceful Shutdown", step by step with the proxy's own calls.
import { HttpProxy } from 'sluice';

async function shutdown(proxy: HttpProxy, serving: Promise<void>): Promise<void> {
  console.log('Initiating graceful shutdown...');

  // Stop accepting new connections (the lifecycle goes to `draining`).
  proxy.stopAccepting();

  // Wait for in-flight requests.
  const timeoutMs = 30000;
  const start = Date.now();
  while (proxy.getActiveConnections() > 0) {
    if (Date.now() - start > timeoutMs) {
      console.log('Timeout waiting for connections to drain');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  // Close remaining connections.
  await proxy.closeAllConnections();

  // Cleanup: the lifecycle reaches `stopped` and the threads end.
  await serving;

  console.log('Shutdown complete');
}

const [address = '127.0.0.1', port] = (process.env['SLUICE_EXAMPLE_BACKEND'] ?? '127.0.0.1:3000').split(':');
const proxy = HttpProxy.init({ listen_port: Number(process.env['SLUICE_EXAMPLE_PORT'] ?? 8080) });
await proxy.addBackend(address, Number(port), 1);
const serving = proxy.serve();
process.once('SIGTERM', () => void shutdown(proxy, serving));
await serving;
