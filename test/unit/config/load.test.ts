/** Loading a config: the seed's file with every default filled in, and what a reload may change. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../src/config/load.ts';
import { planReload } from '../../../src/config/reload.ts';

test('the seed config.json loads unchanged, with every default filled in', () => {
  const config = parseConfig(
    {
      proxy: { listen_port: 8080, max_connections: 10000 },
      backends: [{ address: '192.168.1.10', port: 8080, weight: 1 }],
    },
    'seed',
  );
  assert.is(config.proxy.listen_port, 8080);
  assert.is(config.proxy.drain_timeout_ms, 30000);
  assert.is(config.proxy.health_path, '/health');
  assert.is(config.health_check.unhealthy_threshold, 2);
  assert.is(config.log.format, 'json');
  assert.equal(config.backends, [{ address: '192.168.1.10', port: 8080, weight: 1, enabled: true }]);
  assert.is(config.load_balancing.algorithm, 'weighted_round_robin');
  assert.is(config.health_check.passive, null);
});

test('proxy.require_healthy_backends: true by default; a reload that changes it says it needs a restart', () => {
  const running = parseConfig({}, 'running.json');
  assert.is(running.proxy.require_healthy_backends, true);
  const next = parseConfig({ proxy: { require_healthy_backends: false } }, 'next.json');
  assert.is(next.proxy.require_healthy_backends, false);
  const plan = planReload(running, next);
  assert.equal(plan.needsRestart, ['$.proxy.require_healthy_backends']);
  assert.is(plan.effective.proxy.require_healthy_backends, true);
});

test.run();
