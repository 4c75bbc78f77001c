// The sluice dashboard: the lifecycle chart from /machine.json (the machine's
// own definition), lit live from /events; history, backends and traffic from
// /status and /metrics. Plain browser JavaScript, no build, no CDN.
'use strict';

const token = new URLSearchParams(location.search).get('token');
const withToken = (path) => (token ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : path);
const fetchJson = async (path) => (await fetch(withToken(path))).json();
const svgNs = 'http://www.w3.org/2000/svg';
const el = (name, attrs = {}, parent) => {
  const node = document.createElementNS(svgNs, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
};

const boxes = new Map(); // state id → { x, y, w, h, group }

function drawChart(graph) {
  const svg = document.getElementById('chart');
  svg.replaceChildren();
  const defs = el('defs', {}, svg);
  const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' }, defs);
  el('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#7b8794' }, marker);

  const top = graph.states.filter((s) => s.parent === null);
  const width = 1000;
  const slot = width / top.length;
  svg.setAttribute('viewBox', `0 0 ${width} 230`);
  top.forEach((state, i) => {
    const children = graph.states.filter((s) => s.parent === state.id);
    const w = children.length ? slot - 30 : 130;
    const h = children.length ? 120 : 44;
    const x = i * slot + (slot - w) / 2;
    const y = children.length ? 60 : 98;
    const group = el('g', { class: `state${children.length ? ' composite' : ''}`, 'data-state': state.id }, svg);
    el('rect', { x, y, width: w, height: h }, group);
    el('text', { x: x + w / 2, y: children.length ? y + 18 : y + 27 }, group).textContent = state.key;
    boxes.set(state.id, { x, y, w, h, group });
    children.forEach((child, j) => {
      const cw = (w - 30) / children.length - 10;
      const cx = x + 15 + j * (cw + 20);
      const cy = y + 50;
      const childGroup = el('g', { class: 'state', 'data-state': child.id }, svg);
      el('rect', { x: cx, y: cy, width: cw, height: 40 }, childGroup);
      el('text', { x: cx + cw / 2, y: cy + 25 }, childGroup).textContent = child.key;
      boxes.set(child.id, { x: cx, y: cy, w: cw, h: 40, group: childGroup });
    });
  });

  // Edges between different boxes, bundled per pair so labels do not overlap.
  const pairs = new Map();
  for (const t of graph.transitions) {
    const key = `${t.source}→${t.target}`;
    pairs.set(key, [...(pairs.get(key) ?? []), t.event]);
  }
  let lane = 0;
  const labelsInto = new Map(); // straight edges into one state stack their labels
  for (const [key, events] of pairs) {
    const [source, target] = key.split('→');
    const a = boxes.get(source);
    const b = boxes.get(target);
    if (!a || !b) continue;
    const forward = b.x > a.x;
    const sx = forward ? a.x + a.w : a.x + a.w / 2;
    const tx = forward ? b.x : b.x + b.w / 2;
    const sy = a.y + a.h / 2;
    const ty = b.y + b.h / 2;
    const bend = forward && Math.abs(tx - sx) > 300 ? -(40 + 14 * (lane++ % 3)) : 0;
    const midX = (sx + tx) / 2;
    const midY = Math.min(sy, ty) + bend;
    const group = el('g', { class: 'edge' }, document.getElementById('chart'));
    el('path', { d: bend ? `M ${sx} ${sy - 10} Q ${midX} ${midY - 30} ${tx} ${ty - 10}` : `M ${sx} ${sy} L ${tx} ${ty}` }, group);
    const stacked = bend ? 0 : (labelsInto.get(target) ?? 0);
    if (!bend) labelsInto.set(target, stacked + 1);
    el('text', { x: midX, y: bend ? midY - 18 : Math.min(sy, ty) - 6 + stacked * 26 }, group).textContent = events.join(', ');
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

// Grouped by upstream: a header row per upstream, then its backends.
function renderBackends(backends) {
  const groups = new Map();
  for (const b of backends) {
    const name = b.upstream ?? 'default';
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push(b);
  }
  const rows = [];
  for (const [name, members] of groups) {
    const up = members.filter((b) => b.enabled && b.healthy && !b.ejected).length;
    rows.push(`<tr class="upstream"><th colspan="5">${name} — ${up} of ${members.length} selectable</th></tr>`);
    for (const b of members) {
      const healthy = b.healthy && !b.ejected;
      rows.push(`<tr><td>${b.address}:${b.port}</td><td>${b.weight}</td><td class="${healthy ? 'up' : 'down'}">${b.ejected ? 'ejected' : healthy ? 'healthy' : 'unhealthy'}</td><td>${b.enabled ? 'yes' : 'no'}</td><td>${b.in_flight}</td></tr>`);
    }
  }
  document.querySelector('#backends tbody').innerHTML = rows.join('');
}

const rates = [];
let lastCount;
let lastTime;
async function pollTraffic() {
  const text = await (await fetch(withToken('/metrics'))).text();
  const count = text
    .split('\n')
    .filter((line) => line.startsWith('sluice_requests_total'))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
  const now = performance.now();
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
