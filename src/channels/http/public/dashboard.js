// The status page: polls the authenticated `/api/dashboard` every 2 s and redraws each section.
import { askForToken, authHeader, onTokenSaved } from './api-token.js';

const POLL_MS = 2000;
const updated = document.getElementById('updated');
const COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];
const SVG = 'http://www.w3.org/2000/svg';

let timer;
let lastOk = 0;

async function poll() {
  clearTimeout(timer);
  try {
    const response = await fetch('/api/dashboard', { headers: authHeader(), cache: 'no-store' });
    if (response.status === 401) {
      askForToken();
      updated.textContent = 'an API token is needed';
      return; // Polling resumes once a token is saved.
    }
    if (!response.ok) throw new Error(`the API answered ${response.status}`);
    render(await response.json());
    lastOk = Date.now();
    updated.className = '';
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    updated.className = 'stale';
    updated.textContent = `${error.message}${lastOk ? `; last update ${ago(lastOk)}` : ''}`;
  }
  timer = setTimeout(poll, POLL_MS);
}

onTokenSaved(() => void poll());

// ---- rendering helpers (text only: nothing from the API is parsed as HTML) ----

function el(tag, text, className) {
  const element = document.createElement(tag);
  if (text !== undefined && text !== null) element.textContent = String(text);
  if (className) element.className = className;
  return element;
}

function badge(text, tone) {
  return el('span', text, `badge ${tone}`);
}

function row(cells, attributes = {}) {
  const tr = document.createElement('tr');
  for (const [name, value] of Object.entries(attributes)) tr.dataset[name] = value;
  for (const cell of cells) {
    const td = document.createElement('td');
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell ?? '—';
    tr.append(td);
  }
  return tr;
}

function fillBody(tableId, rows, emptyText) {
  const body = document.querySelector(`#${tableId} tbody`);
  if (rows.length === 0) {
    const td = el('td', emptyText, 'note');
    td.colSpan = document.querySelectorAll(`#${tableId} thead th`).length;
    const tr = document.createElement('tr');
    tr.append(td);
    body.replaceChildren(tr);
  } else body.replaceChildren(...rows);
}

function ago(ms) {
  if (ms === undefined || ms === null) return '—';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 0) return `in ${duration(-s)}`;
  return `${duration(s)} ago`;
}

function duration(s) {
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

function usd(value) {
  if (value === undefined || value === null) return '—';
  if (value === 0 || value >= 0.01) return `$${value.toFixed(2)}`;
  return `$${value.toPrecision(2)}`;
}

function againstLimit(spent, limit) {
  const text = limit === undefined ? usd(spent) : `${usd(spent)} / ${usd(limit)}`;
  return el('span', text, limit !== undefined && spent >= limit ? 'over' : undefined);
}

function unavailable(value) {
  return value && typeof value === 'object' && 'unavailable' in value ? value.unavailable : undefined;
}

const HEALTH_TONES = { healthy: 'good', 'half-open': 'warn', cooldown: 'warn', 'open elsewhere': 'warn' };

// ---- sections ----

function render(data) {
  document.getElementById('agent-name').textContent =
    `— ${data.agent.name} ${data.agent.version}, up ${duration(data.agent.uptimeSeconds)}`;
  renderProviders(data);
  renderChannels(data.channels);
  renderNodes(data.nodes);
  renderRedis(data.redis);
  renderJobs(data.jobs);
  renderWallet(data.wallet);
  renderUsage(data.usage);
}

function renderProviders(data) {
  const rows = data.providers.map((p) => {
    const tone = HEALTH_TONES[p.health] ?? 'bad';
    const state = badge(p.disabled ? `disabled: ${p.disabled}` : p.health, tone);
    state.classList.add('health');
    if (p.lastError && p.health !== 'healthy') state.title = `${p.lastError.failure}: ${p.lastError.message}`;
    return row(
      [
        `${p.id} (${p.model})`,
        state,
        p.cooldownUntil ? new Date(p.cooldownUntil).toLocaleTimeString() : '—',
        `${p.latencyMs.p50 ?? '—'} / ${p.latencyMs.p95 ?? '—'}`,
        p.lastHour ? String(p.lastHour.requests) : '—',
        p.lastHour ? String(p.lastHour.errors) : '—',
        p.cost ? againstLimit(p.cost.dayUsd, p.cost.dayLimitUsd) : '—',
        p.cost ? againstLimit(p.cost.monthUsd, p.cost.monthLimitUsd) : '—',
      ],
      { provider: p.id, health: p.health },
    );
  });
  fillBody('providers', rows, 'No providers are configured.');
  const budgets = document.getElementById('budgets');
  const down = unavailable(data.budgets);
  if (down) budgets.textContent = `Costs unavailable: ${down}`;
  else
    budgets.textContent = data.budgets.length
      ? `Global budget: ${data.budgets.map((b) => `${b.period} ${usd(b.spentUsd)} / ${usd(b.limitUsd)}`).join(', ')}`
      : 'No global budget set.';
}

function renderChannels(channels) {
  const rows = channels.map((c) =>
    row(
      [
        c.name,
        badge(c.connected ? 'connected' : (c.state ?? 'disconnected'), c.connected ? 'good' : 'bad'),
        c.role ?? '—',
        ago(c.lastEventAt),
        ago(c.lastSendAt),
        c.lastError ? `${c.failures} (${c.lastError})` : String(c.failures),
      ],
      { channel: c.name },
    ),
  );
  fillBody('channels', rows, 'No channels.');
}

function renderNodes(nodes) {
  const rows = nodes.map((n) =>
    row(
      [
        `${n.id}${n.self ? ' (this node)' : ''}`,
        badge(n.up ? 'up' : n.stopped ? 'stopped' : 'down', n.up ? 'good' : 'bad'),
        n.role,
        n.leases.length ? n.leases.join(', ') : 'none',
        `${(n.heartbeatAgeMs / 1000).toFixed(1)} s ago`,
      ],
      { node: n.id },
    ),
  );
  fillBody('nodes', rows, 'Single node (no Redis): no cluster.');
}

function definitions(target, pairs) {
  const items = [];
  for (const [term, value] of pairs) {
    items.push(el('dt', term));
    const dd = document.createElement('dd');
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value ?? '—';
    items.push(dd);
  }
  target.replaceChildren(...items);
}

function renderRedis(redis) {
  const target = document.getElementById('redis');
  if (!redis.configured) {
    definitions(target, [['Redis', 'not configured (single node, local files)']]);
    return;
  }
  const replication =
    typeof redis.replication === 'object'
      ? `${redis.replication.role}, ${redis.replication.connectedReplicas} replica(s)`
      : redis.replication;
  definitions(target, [
    ['Reachable', badge(redis.reachable ? 'yes' : 'no', redis.reachable ? 'good' : 'bad')],
    ...(redis.unreachableSince
      ? [['Unreachable since', new Date(redis.unreachableSince).toLocaleString()]]
      : []),
    ['Primary', redis.primary],
    ['Write-ahead pending', String(redis.writeAheadPending)],
    ['Write-ahead replayed', String(redis.writeAheadReplayed)],
    ['Replication', replication],
  ]);
  target.dataset.reachable = String(redis.reachable);
}

function renderJobs(jobs) {
  const down = unavailable(jobs);
  if (down) {
    fillBody('jobs', [], `Jobs unavailable: ${down}`);
    return;
  }
  const rows = jobs.map((j) =>
    row(
      [
        j.name,
        j.scope,
        j.lastRunAt ? `${ago(j.lastRunAt)}${j.lastNode ? ` on ${j.lastNode}` : ''}` : 'not yet',
        j.lastOutcome
          ? badge(
              j.lastOutcome === 'ok' ? 'ok' : `failed ×${j.consecutiveFailures}`,
              j.lastOutcome === 'ok' ? 'good' : 'bad',
            )
          : '—',
        j.nextRunAt
          ? j.nextRunAt <= Date.now()
            ? 'due now'
            : ago(j.nextRunAt)
          : j.everyMs
            ? `every ${duration(Math.round(j.everyMs / 1000))}`
            : '—',
        String(j.runs),
      ],
      { job: j.name },
    ),
  );
  fillBody('jobs', rows, 'No jobs.');
}

function renderWallet(wallet) {
  const section = document.getElementById('wallet-section');
  section.hidden = !wallet;
  if (!wallet) return;
  const balances = unavailable(wallet.balances)
    ? `unavailable: ${wallet.balances.unavailable}`
    : wallet.balances.map((b) => `${b.amount} ${b.token}`).join(', ') || 'none';
  definitions(document.getElementById('wallet'), [
    ['Address', wallet.address],
    ['Balances', balances],
  ]);
  const spendDown = unavailable(wallet.spent24h);
  fillBody(
    'wallet-spend',
    spendDown
      ? []
      : wallet.spent24h.map((s) =>
          row([s.token, s.spent, s.perDay ?? 'cannot be sent', s.autonomousSpent, s.autonomousPerDay ?? '—']),
        ),
    spendDown ? `Spending unavailable: ${spendDown}` : 'No tokens.',
  );
  const pendingDown = unavailable(wallet.pending);
  fillBody(
    'wallet-pending',
    pendingDown
      ? []
      : wallet.pending.map((p) =>
          row([
            p.id,
            `${p.amount} ${p.token}`,
            p.recipient,
            p.approvalExpiresAt ? ago(p.approvalExpiresAt) : '—',
          ]),
        ),
    pendingDown ? `Pending approvals unavailable: ${pendingDown}` : 'No transfer waits for approval.',
  );
}

// ---- the 24-hour chart: hand-drawn SVG, one line per provider ----

function renderUsage(usage) {
  const ids = Object.keys(usage.providers).sort();
  const color = (id) => COLORS[ids.indexOf(id) % COLORS.length];
  drawChart(document.getElementById('cost-chart'), usage, ids, 'costUsd', color, (v) => usd(v));
  drawChart(document.getElementById('requests-chart'), usage, ids, 'requests', color, (v) => String(v));
  const legend = document.getElementById('usage-legend');
  legend.replaceChildren(
    ...ids.map((id) => {
      const item = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = color(id);
      const line = usage.providers[id];
      const total = (values) => values.reduce((a, b) => a + b, 0);
      item.append(swatch, `${id}: ${total(line.requests)} requests, ${usd(total(line.costUsd))}`);
      return item;
    }),
  );
  document.getElementById('usage-source').textContent =
    usage.source === 'cluster'
      ? 'Totals of every node (Redis), in 5-minute buckets.'
      : `This node only${usage.unavailable ? ` (Redis: ${usage.unavailable})` : ''}, in 5-minute buckets.`;
}

function svg(tag, attributes, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function drawChart(target, usage, ids, field, color, label) {
  const width = 480;
  const height = 160;
  const left = 52;
  const right = 8;
  const top = 10;
  const bottom = 20;
  const buckets = ids.length ? usage.providers[ids[0]][field].length : 288;
  let max = 0;
  for (const id of ids) for (const v of usage.providers[id][field]) max = Math.max(max, v);
  const x = (i) => left + (i / Math.max(1, buckets - 1)) * (width - left - right);
  const y = (v) => top + (1 - (max > 0 ? v / max : 0)) * (height - top - bottom);
  const parts = [
    svg('line', { class: 'axis', x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }),
    svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: height - bottom }),
    svg('text', { x: left - 4, y: top + 8, 'text-anchor': 'end' }, label(max)),
    svg('text', { x: left - 4, y: height - bottom, 'text-anchor': 'end' }, label(0)),
    svg('text', { x: left, y: height - 6 }, '24 h ago'),
    svg('text', { x: (left + width - right) / 2, y: height - 6, 'text-anchor': 'middle' }, '12 h ago'),
    svg('text', { x: width - right, y: height - 6, 'text-anchor': 'end' }, 'now'),
  ];
  for (const id of ids) {
    const points = usage.providers[id][field]
      .map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`)
      .join(' ');
    parts.push(svg('polyline', { points, stroke: color(id), 'data-provider': id }));
  }
  if (ids.length === 0)
    parts.push(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'no traffic yet'));
  target.replaceChildren(...parts);
}

void poll();
