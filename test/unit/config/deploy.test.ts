/** The deploy files agree with the configs they ship with: timeouts, paths, signals, users. */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAllDocuments } from 'yaml';
import { loadConfigFile, parseConfig } from '../../../src/config/load.ts';

const path = (p: string) => new URL(`../../../deploy/${p}`, import.meta.url);
const read = (p: string) => readFileSync(path(p), 'utf8');
const systemdConfig = loadConfigFile(path('sluice.json').pathname);
const containerConfig = loadConfigFile(path('container.json').pathname);
const stopBudgetMs = (c: typeof systemdConfig) => c.proxy.grace_period_ms + c.proxy.drain_timeout_ms;

/** The parts of kubernetes.yaml the checks read. */
interface Probe {
  httpGet: { path: string };
  periodSeconds: number;
  failureThreshold: number;
}
interface ConfigMap {
  kind: 'ConfigMap';
  data: { 'sluice.json': string };
}
interface Deployment {
  kind: 'Deployment';
  spec: {
    template: {
      spec: {
        terminationGracePeriodSeconds: number;
        containers: {
          ports: { name: string; containerPort: number }[];
          startupProbe: Probe;
          livenessProbe: Probe;
          readinessProbe: Probe;
          securityContext: { runAsNonRoot: boolean };
        }[];
      };
    };
  };
}

/** `Key=Value` lines of a unit file (comments and sections left out). */
function unit(text: string): Map<string, string> {
  const entries = text
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const);
  return new Map(entries);
}

test('systemd: Type=forking with the PID file of the config, -d, and stop/start timeouts above the config', () => {
  const service = unit(read('sluice.service'));
  assert.is(service.get('Type'), 'forking');
  assert.is(service.get('PIDFile'), systemdConfig.proxy.pid_file);
  assert.match(service.get('ExecStart')!, / -d -c \/etc\/sluice\/sluice\.json$/);
  assert.match(service.get('ExecStop')!, / stop -c \/etc\/sluice\/sluice\.json$/);
  assert.match(service.get('ExecReload')!, / reload -c \/etc\/sluice\/sluice\.json$/);
  assert.ok(systemdConfig.admin, 'reload reports its outcome through the admin listener');
  assert.is(service.get('KillSignal'), 'SIGTERM');
  assert.ok(
    Number(service.get('TimeoutStopSec')) * 1000 > stopBudgetMs(systemdConfig),
    'TimeoutStopSec above grace + drain',
  );
  assert.ok(
    Number(service.get('TimeoutStartSec')) * 1000 > systemdConfig.proxy.startup_timeout_ms,
    'TimeoutStartSec above the startup timeout',
  );
  assert.is(service.get('RuntimeDirectory'), 'sluice', 'systemd creates the PID file folder');
  assert.ok(systemdConfig.proxy.pid_file!.startsWith('/run/sluice/'));
  assert.ok(systemdConfig.log.file!.startsWith(`/var/log/${service.get('LogsDirectory')}/`));
});

test('kubernetes: the ConfigMap is deploy/container.json; probes, grace period and termination budget agree with it', () => {
  const docs = parseAllDocuments(read('kubernetes.yaml')).map((d) => d.toJS() as { kind: string });
  const kinds = docs.map((d) => d.kind);
  assert.equal(kinds, ['ConfigMap', 'Deployment', 'Service']);
  const [configMap, deployment] = docs as [ConfigMap, Deployment];
  const shipped = parseConfig(JSON.parse(configMap.data['sluice.json']), 'kubernetes.yaml ConfigMap');
  assert.equal(shipped, containerConfig);
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0]!;
  assert.ok(
    pod.terminationGracePeriodSeconds * 1000 > stopBudgetMs(shipped),
    'terminationGracePeriodSeconds above grace + drain',
  );
  assert.is(container.startupProbe.httpGet.path, shipped.proxy.live_path);
  assert.is(container.livenessProbe.httpGet.path, shipped.proxy.live_path);
  assert.is(container.readinessProbe.httpGet.path, shipped.proxy.ready_path);
  const port = container.ports.find((p) => p.name === 'http')!.containerPort;
  assert.is(port, shipped.proxy.listen_port);
  const startupBudgetMs = container.startupProbe.periodSeconds * container.startupProbe.failureThreshold * 1000;
  assert.ok(startupBudgetMs > shipped.proxy.startup_timeout_ms, 'the startup probe waits out the startup timeout');
  const readinessNoticeMs = container.readinessProbe.periodSeconds * container.readinessProbe.failureThreshold * 1000;
  assert.ok(
    shipped.proxy.grace_period_ms >= readinessNoticeMs + 5_000,
    'grace period covers the readiness probe noticing and endpoint propagation',
  );
  assert.is(container.securityContext.runAsNonRoot, true);
});

test('Dockerfile: node:24-slim, non-root, STOPSIGNAL SIGTERM, exec-form entrypoint, the container config', () => {
  const lines = read('Dockerfile')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'));
  const last = (instruction: string) =>
    lines
      .filter((l) => l.startsWith(`${instruction} `))
      .at(-1)
      ?.slice(instruction.length + 1);
  assert.ok(lines.filter((l) => l.startsWith('FROM ')).every((l) => l.startsWith('FROM node:24-slim')));
  assert.is(last('USER'), 'node');
  assert.is(last('STOPSIGNAL'), 'SIGTERM');
  const entrypoint = JSON.parse(last('ENTRYPOINT')!) as string[];
  assert.equal(entrypoint, ['node', '/opt/sluice/dist/main.js'], 'exec form: sluice is PID 1 and gets the signal');
  assert.equal(JSON.parse(last('CMD')!), ['-c', '/etc/sluice/sluice.json']);
  assert.ok(lines.includes('COPY deploy/container.json /etc/sluice/sluice.json'));
  assert.is(last('EXPOSE'), String(containerConfig.proxy.listen_port));
});

test.run();
