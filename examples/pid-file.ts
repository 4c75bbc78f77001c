// The seed's "PID File": written atomically at start, removed on exit.
// A PID file naming a live process refuses the start (serve() rejects with
// PidFileLockedError); a stale one is replaced.
import { HttpProxy } from 'sluice';

const pidPath = process.env['SLUICE_EXAMPLE_PID_FILE'] ?? '/run/sluice/sluice.pid';

const [address = '127.0.0.1', port] = (process.env['SLUICE_EXAMPLE_BACKEND'] ?? '127.0.0.1:3000').split(':');
const proxy = HttpProxy.init({
  listen_port: Number(process.env['SLUICE_EXAMPLE_PORT'] ?? 8080),
  pid_file: pidPath,
  handleSignals: true,
});
await proxy.addBackend(address, Number(port), 1);

await proxy.serve();
