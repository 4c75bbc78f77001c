// The seed's "Startup Health Check": serve in the background, wait until healthy or give up.
import { HttpProxy } from 'sluice';

const [address = '127.0.0.1', port] = (process.env['SLUICE_EXAMPLE_BACKEND'] ?? '127.0.0.1:3000').split(':');
const proxy = HttpProxy.init({ listen_port: Number(process.env['SLUICE_EXAMPLE_PORT'] ?? 8080), handleSignals: true });
await proxy.addBackend(address, Number(port), 1);

// Start in background.
const serving = proxy.serve().catch(() => {
  // A failed start is reported by waitForHealthy below.
});

// Wait for healthy.
try {
  await proxy.waitForHealthy(Number(process.env['SLUICE_EXAMPLE_WAIT_MS'] ?? 10000));
} catch (error) {
  console.log(`Failed to start: ${(error as Error).name}`);
  await proxy.shutdown();
  process.exit(1);
}

console.log('Proxy is healthy and accepting connections');

await serving;
