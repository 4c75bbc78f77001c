// The sluice dashboard: the lifecycle chart from /machine.json (the machine's
// own definition), lit live from /events; history, backends and traffic from
// /status and /metrics. Plain browser JavaScript, no build, no CDN.
'use strict';

const token = new URLSearchParams(location.search).get('token');
const withToken = (path) =>
  token ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : path;
const fetchJson = async (path) => (await fetch(withToken(path))).json();
const svgNs = 'http://www.w3.org/2000/svg';
const el = (name, attrs = {}, parent) => {
  const node = document.createElementNS(svgNs, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
};

const boxes = new Map(); // state id → { x, y, w, h, group }

const CHART_WIDTH = 1000;
const ROW_HEIGHT = 110; // a composite state's box; leaf states are centred in it
const LANE_HEIGHT = 16;

/**
 * Every edge is an arc over the boxes, its label at the top of the arc, in
 * the lowest lane where it meets no other label. Labels live above every
 * box, so no label ever covers a state.
 */
function drawChart(graph) {
  const svg = document.getElementById('chart');
  svg.replaceChildren();
  boxes.clear();
  const defs = el('defs', {}, svg);
  const marker = el(
    'marker',
    {
      id: 'arrow',
      viewBox: '0 0 10 10',
      refX: '9',
      refY: '5',
      markerWidth: '7',
      markerHeight: '7',
      orient: 'auto-start-reverse',
    },
    defs,
  );
  el('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#7b8794' }, marker);

  // The boxes, with y relative to the top of the row (moved below the label lanes at the end).
  const top = graph.states.filter((s) => s.parent === null);
  const slot = CHART_WIDTH / top.length;
  const layout = [];
  top.forEach((state, i) => {
    const children = graph.states.filter((s) => s.parent === state.id);
    const w = children.length ? slot - 30 : Math.min(130, slot - 20);
    const h = children.length ? ROW_HEIGHT : 44;
    const x = i * slot + (slot - w) / 2;
    layout.push({ state, x, y: (ROW_HEIGHT - h) / 2, w, h, composite: children.length > 0 });
    children.forEach((child, j) => {
      const cw = (w - 30) / children.length - 10;
      layout.push({ state: child, x: x + 15 + j * (cw + 20), y: 45, w: cw, h: 40, composite: false });
    });
  });
  const boxOf = new Map(layout.map((box) => [box.state.id, box]));

  // Edges between different boxes, bundled per pair: one arc, one label.
  const pairs = new Map();
  for (const t of graph.transitions) {
    const key = `${t.source}→${t.target}`;
    pairs.set(key, [...(pairs.get(key) ?? []), t.event]);
  }
  const outgoing = new Map();
  const incoming = new Map();
  const edges = [];
  for (const [key, events] of pairs) {
    const [source, target] = key.split('→');
    const a = boxOf.get(source);
    const b = boxOf.get(target);
    if (!a || !b) continue;
    const out = outgoing.get(source) ?? 0;
    const into = incoming.get(target) ?? 0;
    outgoing.set(source, out + 1);
    incoming.set(target, into + 1);
    // Leave from the right part of the source's top, arrive on the left part of the target's.
    const sx = a.x + a.w * 0.75 - 10 * out;
    const tx = b.x + b.w * 0.25 + 10 * into;
    const text = el('text', { class: 'edge-label' }, svg);
    text.textContent = events.join(', ');
    const width = text.getBBox().width;
    text.remove();
    const mid = (sx + tx) / 2;
    edges.push({ a, b, sx, tx, text: events.join(', '), from: mid - width / 2 - 6, to: mid + width / 2 + 6 });
  }
  // Short spans take the low lanes; a label goes in the lowest lane where it overlaps no other.
  const lanes = [];
  for (const edge of [...edges].sort((p, q) => Math.abs(p.tx - p.sx) - Math.abs(q.tx - q.sx))) {
    let lane = lanes.findIndex((taken) => taken.every((o) => edge.to <= o.from || edge.from >= o.to));
    if (lane === -1) lane = lanes.push([]) - 1;
    lanes[lane].push(edge);
    edge.lane = lane;
  }
  const rowTop = 20 + lanes.length * LANE_HEIGHT;
  const height = rowTop + ROW_HEIGHT + 16;
  svg.setAttribute('viewBox', `0 0 ${CHART_WIDTH} ${height}`);

  for (const { state, x, y, w, h, composite } of layout) {
    const group = el('g', { class: `state${composite ? ' composite' : ''}`, 'data-state': state.id }, svg);
    el('rect', { x, y: rowTop + y, width: w, height: h }, group);
    // A composite's name sits in its corner: the middle of its top is where arcs pass.
    const label = composite ? { x: x + 10, y: rowTop + y + 18 } : { x: x + w / 2, y: rowTop + y + h / 2 + 5 };
    el('text', label, group).textContent = state.key;
    boxes.set(state.id, { x, y: rowTop + y, w, h, group });
  }
  for (const edge of edges) {
    const sy = rowTop + edge.a.y;
    const ty = rowTop + edge.b.y;
    const labelY = rowTop - 8 - edge.lane * LANE_HEIGHT;
    // A cubic whose control points share one height peaks 3/4 of the way to it: just under its label.
    const apex = labelY + 4;
    const control = (from) => from + (apex - from) / 0.75;
    const group = el('g', { class: 'edge' }, svg);
    const d = `M ${edge.sx} ${sy} C ${edge.sx} ${control(sy)} ${edge.tx} ${control(ty)} ${edge.tx} ${ty}`;
    el('path', { d }, group);
    el('text', { x: (edge.sx + edge.tx) / 2, y: labelY, class: 'edge-label' }, group).textContent = edge.text;
  }
}

function light(state) {
  const badge = document.getElementById('state');
  badge.textContent = state;
  badge.dataset.state = state;
  for (const { group } of boxes.values()) group.classList.remove('lit');
  boxes.get(state)?.group.classList.add('lit');
  document.body.dataset.state = state;
}

function addToTimeline({ at, from, to, event }) {
  const item = document.createElement('li');
  item.textContent = `${at.slice(11, 23)}  ${from} → ${to}  (${event})`;
  document.getElementById('timeline').appendChild(item);
}

const backendKey = (b) => (b.address.includes(':') ? `[${b.address}]:${b.port}` : `${b.address}:${b.port}`);

// Grouped by upstream: a header row per upstream, then its backends, with their traffic.
let lastBackends = [];
function renderBackends(backends) {
  lastBackends = backends;
  const groups = new Map();
  for (const b of backends) {
    const name = b.upstream ?? 'default';
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push(b);
  }
  const rows = [];
  for (const [name, members] of groups) {
    const up = members.filter((b) => b.enabled && b.healthy && !b.ejected).length;
    rows.push(`<tr class="upstream"><th colspan="7">${name} — ${up} of ${members.length} selectable</th></tr>`);
    for (const b of members) {
      const healthy = b.healthy && !b.ejected;
      const traffic = backendTraffic.get(backendKey(b));
      const rate = traffic ? traffic.rate.toFixed(1) : '–';
      const latency = traffic?.latencyMs !== undefined ? `${traffic.latencyMs.toFixed(1)} ms` : '–';
      const health = b.ejected ? 'ejected' : healthy ? 'healthy' : 'unhealthy';
      rows.push(
        `<tr data-backend="${backendKey(b)}"><td>${backendKey(b)}</td><td>${b.weight}</td>` +
          `<td class="${healthy ? 'up' : 'down'}">${health}</td><td>${b.enabled ? 'yes' : 'no'}</td>` +
          `<td>${b.in_flight}</td>` +
          `<td class="rate">${rate}</td><td class="latency">${latency}</td></tr>`,
      );
    }
  }
  document.querySelector('#backends tbody').innerHTML = rows.join('');
}

/** `name{a="x",b="y"} value` lines of one metric, as `{ labels, value }`. */
function samples(text, name) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const labels = {};
    const pairs = line.slice(name.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g);
    for (const [, key, value] of pairs) labels[key] = value;
    out.push({ labels, value: Number(line.slice(close + 1).trim()) });
  }
  return out;
}

// Per backend, between two scrapes: requests per second, and their mean latency
// (sluice_backend_request_seconds_total over sluice_requests_total).
const backendTraffic = new Map(); // backend → { rate, latencyMs }
let lastPerBackend;
function updateBackendTraffic(text, elapsedMs) {
  const now = new Map();
  const entry = (backend) => now.get(backend) ?? now.set(backend, { count: 0, seconds: 0 }).get(backend);
  for (const { labels, value } of samples(text, 'sluice_requests_total')) {
    if (labels.backend !== 'none') entry(labels.backend).count += value;
  }
  for (const { labels, value } of samples(text, 'sluice_backend_request_seconds_total')) {
    entry(labels.backend).seconds += value;
  }
  if (lastPerBackend && elapsedMs > 0) {
    for (const [backend, { count, seconds }] of now) {
      const before = lastPerBackend.get(backend) ?? { count: 0, seconds: 0 };
      const requests = Math.max(0, count - before.count);
      // No request since the last scrape: the latency shown stays the last one measured.
      const latencyMs =
        requests > 0 ? ((seconds - before.seconds) * 1000) / requests : backendTraffic.get(backend)?.latencyMs;
      backendTraffic.set(backend, { rate: (requests * 1000) / elapsedMs, latencyMs });
    }
  }
  lastPerBackend = now;
}

const rates = [];
let lastCount;
let lastTime;
async function pollTraffic() {
  const text = await (await fetch(withToken('/metrics'))).text();
  const count = samples(text, 'sluice_requests_total').reduce((sum, { value }) => sum + value, 0);
  const now = performance.now();
  updateBackendTraffic(text, lastTime === undefined ? 0 : now - lastTime);
  renderBackends(lastBackends);
  if (lastCount !== undefined) {
    const rate = Math.max(0, ((count - lastCount) * 1000) / (now - lastTime));
    rates.push(rate);
    if (rates.length > 60) rates.shift();
    document.getElementById('rate').textContent = rate.toFixed(1);
    const max = Math.max(1, ...rates);
    const points = rates.map((r, i) => `${(i / 59) * 300},${60 - (r / max) * 55}`).join(' ');
    document.querySelector('#spark polyline').setAttribute('points', points);
  }
  lastCount = count;
  lastTime = now;
}

async function pollStatus() {
  const status = await fetchJson('/status');
  renderBackends(status.backends);
  document.getElementById('connections').textContent = status.connections.active;
  document.getElementById('meta').textContent = `pid ${status.pid} · up ${Math.round(status.uptime_ms / 1000)} s`;
}

async function main() {
  drawChart(await fetchJson('/machine.json'));
  const events = new EventSource(withToken('/events'));
  events.addEventListener('state', (e) => {
    const { state, history } = JSON.parse(e.data);
    document.getElementById('timeline').replaceChildren();
    history.forEach(addToTimeline);
    light(state);
  });
  events.addEventListener('transition', (e) => {
    const record = JSON.parse(e.data);
    addToTimeline(record);
    light(record.to);
  });
  events.addEventListener('health', () => void pollStatus());
  const tick = () => Promise.allSettled([pollStatus(), pollTraffic()]);
  await tick();
  setInterval(tick, 1000);
}

main();
