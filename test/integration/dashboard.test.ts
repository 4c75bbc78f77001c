/**
 * The dashboard in a real browser (Debian's chromium through playwright-core):
 * `healthy` is lit, SIGTERM lights `draining`, and a screenshot is saved.
 * Without /usr/bin/chromium the test is skipped — unless SLUICE_REQUIRE_BROWSER=1
 * (.ci/run sets it, after installing chromium), when its absence fails.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chromium, type Browser } from 'playwright-core';
import { get } from '../support/http.ts';
import { exitWithin, killAll, startSluice, transitionTo } from '../support/sluice-process.ts';
import { startUpstream } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
let browser: Browser | undefined;
const cleanups: (() => Promise<void>)[] = [];

test.after(async () => {
  await browser?.close();
  killAll();
  for (const cleanup of cleanups) await cleanup();
});

// Run in the page (this project compiles without the DOM library, so as source text).
const chartOverlaps = `(() => {
  const box = (node) => {
    const b = node.getBBox();
    return { left: b.x, top: b.y, right: b.x + b.width, bottom: b.y + b.height };
  };
  const hit = (p, q) => p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom;
  const labels = [...document.querySelectorAll('#chart .edge text')].map((n) => ({ name: n.textContent, ...box(n) }));
  const states = [...document.querySelectorAll('#chart .state')]
    .map((g) => ({ name: g.dataset.state, ...box(g.querySelector('rect')) }));
  const overlaps = [];
  labels.forEach((label, i) => {
    for (const state of states) if (hit(label, state)) overlaps.push('"' + label.name + '" over state ' + state.name);
    for (const other of labels.slice(i + 1)) {
      if (hit(label, other)) overlaps.push('"' + label.name + '" over "' + other.name + '"');
    }
  });
  return { overlaps, labels: labels.length };
})()`;

/** True in the page once the backend's row shows a request rate above 0 and a latency in ms. */
const backendTrafficShown = (backend: string) => `(() => {
  const row = document.querySelector('#backends tr[data-backend="${backend}"]');
  const rate = Number(row?.querySelector('.rate')?.textContent);
  return rate > 0 && /^\\d+\\.\\d ms$/.test(row?.querySelector('.latency')?.textContent ?? '');
})()`;

test('the dashboard lights the current state and follows it live', async () => {
  if (!available) {
    assert.not.ok(process.env['SLUICE_REQUIRE_BROWSER'] === '1', `${CHROMIUM} is required (SLUICE_REQUIRE_BROWSER=1)`);
    console.log(`  (skipped: ${CHROMIUM} is not installed; apt-get install chromium)`);
    return;
  }
  const upstream = await startUpstream('a');
  cleanups.push(() => upstream.close());
  const token = 'dashboard-token';
  const config = writeConfig({
    ...testConfig([{ port: upstream.port }], { grace_period_ms: 3_000 }),
    admin: { listen_port: 0, token },
  });
  const sluice = startSluice(['-c', config]);
  const port = await sluice.port();
  const adminPort = (await sluice.waitForLog((l) => l['event'] === 'admin.listening'))['port'] as number;
  await sluice.waitForLog(transitionTo('healthy'));

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  await page.goto(`http://127.0.0.1:${adminPort}/?token=${token}`);
  await page.waitForSelector('#chart .state.lit[data-state="healthy"]', { timeout: 10_000 });
  // The DOM's types are not in this project's lib: the page's nodes are typed by what is read of them.
  const drawn = await page.$$eval('#chart .state', (nodes: { getAttribute(name: string): string | null }[]) =>
    nodes.map((n) => n.getAttribute('data-state')),
  );
  assert.ok(
    ['starting', 'healthy', 'draining', 'draining.grace', 'draining.closing', 'stopped'].every((s) =>
      drawn.includes(s),
    ),
    `drawn: ${drawn.join(',')}`,
  );
  await page.waitForSelector('#backends tbody tr', { timeout: 10_000 });

  // No edge label covers a state's box (composite ones included) or another label.
  const layout = await page.evaluate<{ overlaps: string[]; labels: number }>(chartOverlaps);
  assert.equal(layout.overlaps, []);
  assert.ok(layout.labels >= 5, `${layout.labels} edge labels`);

  // Per backend: its request rate and mean latency, from /metrics, while requests flow.
  const traffic = setInterval(
    () =>
      void get(port, '/dashboard-traffic').catch(() => {
        /* traffic only: the chart is what the test reads */
      }),
    20,
  );
  try {
    await page.waitForFunction(backendTrafficShown(`127.0.0.1:${upstream.port}`), undefined, { timeout: 10_000 });
  } finally {
    clearInterval(traffic);
  }

  sluice.kill('SIGTERM');
  await page.waitForSelector('#chart .state.lit[data-state="draining"]', { timeout: 10_000 });
  assert.is(await page.textContent('#state'), 'draining');
  assert.match((await page.textContent('#timeline')) ?? '', 'healthy → draining');
  const screenshot = join(tempDir('sluice-dashboard-'), 'dashboard.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  assert.ok(statSync(screenshot).size > 10_000, 'a real screenshot was saved');
  console.log(`  screenshot: ${screenshot}`);

  assert.is((await exitWithin(sluice)).code, 0);
});

test.run();
