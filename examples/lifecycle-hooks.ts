// The seed's "Lifecycle Hooks": onStart before accepting, onStop after accepting stopped.
import { HttpProxy } from 'sluice';

function onProxyStart(proxy: HttpProxy): void {
  console.log(`Proxy started on port ${proxy.config.listen_port}`);
  // Initialize metrics, open log files, etc.
}

function onProxyStop(): void {
  console.log('Proxy stopping...');
  // Flush metrics, close log files, etc.
}

const [address = '127.0.0.1', port] = (process.env['SLUICE_EXAMPLE_BACKEND'] ?? '127.0.0.1:3000').split(':');
const proxy = HttpProxy.init({
  listen_port: Number(process.env['SLUICE_EXAMPLE_PORT'] ?? 8080),
  hooks: {
    onStart: onProxyStart,
    onStop: onProxyStop,
  },
  handleSignals: true,
});
await proxy.addBackend(address, Number(port), 1);
await proxy.serve();
