// The seed's "With Configuration File": load config.json, init from its proxy section, add its backends.
import { HttpProxy, loadConfig } from 'sluice';

// Validated (1 MiB limit, unknown keys refused, every error names the JSON path) and typed.
const config = loadConfig(process.argv[2] ?? 'config.json');

const proxy = HttpProxy.init({ ...config.proxy, handleSignals: true });

for (const backend of config.backends) {
  await proxy.addBackend(backend.address, backend.port, backend.weight);
}

await proxy.serve();
