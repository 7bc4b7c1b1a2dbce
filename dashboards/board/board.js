// eitwatch board: the provincial overview, live alerts, factory charts and indicators.
// Plain JS without a build step; charts are SVG drawn here, so every asset is served by the
// server (embedded in its binary) and the board works with no internet.
'use strict';

const BKK_OFFSET_MS = 7 * 3600 * 1000; // Asia/Bangkok is UTC+07:00 all year
const STATES = ['exceeding', 'sensor_fault', 'no_data', 'insufficient_data', 'compliant'];

const TEXT = {
  en: {
    title: 'eitwatch compliance board', nav_overview: 'Overview', nav_indicators: 'Indicators',
    be: 'B.E. dates', token_change: 'Token', live_on: 'live', live_off: 'offline',
    token_title: 'Access token', token_help: 'Paste the token the provincial office gave you. It is kept in this browser only.',
    token_save: 'Save', token_none: 'No token (loopback)',
    overview: 'Area overview', at_o2: 'at', instantaneous: 'grab sample', hourly: 'hourly mean', daily: 'daily mean', samples: 'grab samples', open_n: 'open alerts', open_alerts: 'Open alerts', no_open_alerts: 'No open alerts.', factories: 'Factories',
    area: 'Area', type: 'Type', state: 'State', all: 'All', effluent: 'Effluent', emission: 'Stack emission', ambient: 'Ambient',
    compliant: 'Compliant', exceeding: 'Exceeding', no_data: 'No data', sensor_fault: 'Sensor fault', insufficient_data: 'Insufficient data',
    exceedance: 'Exceedance', availability: 'Availability', deadline: 'Deadline',
    pending: 'pending', firing: 'firing', acknowledged: 'acknowledged', resolved: 'resolved',
    acknowledge: 'Acknowledge', comment: 'Comment', send: 'Send', cancel: 'Cancel',
    acked_by: 'Acknowledged by', at: 'at', since: 'since', history: 'History', opened: 'opened', fired: 'fired',
    points: 'points', latest: 'Latest', category: 'category',
    factory: 'Factory', range: 'Range', h6: 'Last 6 hours', h24: 'Last 24 hours', d7: 'Last 7 days', d30: 'Last 30 days', custom: 'Custom',
    from: 'From', to: 'To', show: 'Show', reading: 'reading (mean, min–max)', limit: 'limit', episode: 'exceedance episode',
    p_compliant: 'compliant period', p_exceeds: 'exceeding period', p_insufficient: 'insufficient data', p_cannot: 'cannot correct',
    daily_availability: 'Daily availability', no_readings: 'No readings in this range.', alerts_of_factory: 'Alerts',
    indicators: 'Indicators', export_csv: 'Download CSV', export_xlsx: 'Download XLSX',
    indicators_missing: 'The indicators API does not answer on this server', loading: 'Loading…',
    ack_failed: 'Acknowledgement refused', back: 'Back to the overview', unknown_factory: 'No such factory (or not within your token)',
  },
  th: {
    title: 'กระดานติดตามการปฏิบัติตามมาตรฐาน eitwatch', nav_overview: 'ภาพรวม', nav_indicators: 'ตัวชี้วัด',
    be: 'วันที่แบบ พ.ศ.', token_change: 'โทเคน', live_on: 'เชื่อมต่อสด', live_off: 'ไม่ได้เชื่อมต่อ',
    token_title: 'โทเคนสำหรับเข้าใช้งาน', token_help: 'วางโทเคนที่ได้รับจากสำนักงานอุตสาหกรรมจังหวัด โทเคนจะเก็บไว้ในเบราว์เซอร์นี้เท่านั้น',
    token_save: 'บันทึก', token_none: 'ไม่ใช้โทเคน (เครื่องเดียวกัน)',
    overview: 'ภาพรวมพื้นที่', at_o2: 'ที่', instantaneous: 'ตัวอย่างแบบจ้วง', hourly: 'ค่าเฉลี่ยรายชั่วโมง', daily: 'ค่าเฉลี่ยรายวัน', samples: 'ตัวอย่างแบบจ้วง', open_n: 'แจ้งเตือนที่เปิดอยู่', open_alerts: 'การแจ้งเตือนที่ยังเปิดอยู่', no_open_alerts: 'ไม่มีการแจ้งเตือนที่เปิดอยู่', factories: 'โรงงาน',
    area: 'พื้นที่', type: 'ประเภท', state: 'สถานะ', all: 'ทั้งหมด', effluent: 'น้ำทิ้ง', emission: 'อากาศจากปล่อง', ambient: 'บรรยากาศ',
    compliant: 'เป็นไปตามมาตรฐาน', exceeding: 'เกินมาตรฐาน', no_data: 'ไม่มีข้อมูล', sensor_fault: 'เครื่องมือวัดขัดข้อง', insufficient_data: 'ข้อมูลไม่เพียงพอ',
    exceedance: 'ค่าเกินมาตรฐาน', availability: 'ความครบถ้วนของข้อมูล', deadline: 'กำหนดเวลาแจ้ง',
    pending: 'รอยืนยัน', firing: 'กำลังแจ้งเตือน', acknowledged: 'รับทราบแล้ว', resolved: 'คลี่คลายแล้ว',
    acknowledge: 'รับทราบ', comment: 'หมายเหตุ', send: 'ส่ง', cancel: 'ยกเลิก',
    acked_by: 'รับทราบโดย', at: 'เมื่อ', since: 'ตั้งแต่', history: 'ประวัติ', opened: 'เริ่ม', fired: 'แจ้งเตือน',
    points: 'จุดตรวจวัด', latest: 'ค่าล่าสุด', category: 'จำพวก',
    factory: 'โรงงาน', range: 'ช่วงเวลา', h6: '6 ชั่วโมงล่าสุด', h24: '24 ชั่วโมงล่าสุด', d7: '7 วันล่าสุด', d30: '30 วันล่าสุด', custom: 'กำหนดเอง',
    from: 'ตั้งแต่', to: 'ถึง', show: 'แสดง', reading: 'ค่าที่วัดได้ (เฉลี่ย, ต่ำสุด–สูงสุด)', limit: 'ค่ามาตรฐาน', episode: 'ช่วงที่เกินมาตรฐาน',
    p_compliant: 'ช่วงที่เป็นไปตามมาตรฐาน', p_exceeds: 'ช่วงที่เกินมาตรฐาน', p_insufficient: 'ข้อมูลไม่เพียงพอ', p_cannot: 'ปรับค่า O₂ ไม่ได้',
    daily_availability: 'ความครบถ้วนของข้อมูลรายวัน', no_readings: 'ไม่มีข้อมูลในช่วงเวลานี้', alerts_of_factory: 'การแจ้งเตือน',
    indicators: 'ตัวชี้วัด', export_csv: 'ดาวน์โหลด CSV', export_xlsx: 'ดาวน์โหลด XLSX',
    indicators_missing: 'เซิร์ฟเวอร์นี้ยังไม่มีบริการตัวชี้วัด', loading: 'กำลังโหลด…',
    ack_failed: 'รับทราบไม่สำเร็จ', back: 'กลับไปหน้าภาพรวม', unknown_factory: 'ไม่พบโรงงานนี้ (หรือโทเคนไม่มีสิทธิ์)',
  },
};

const S = {
  token: localStorage.getItem('eitwatch.token'),
  lang: localStorage.getItem('eitwatch.lang') || 'en',
  be: localStorage.getItem('eitwatch.be') === '1',
  site: null,
  status: null,
  alerts: new Map(),
  filters: { area: '', kind: '', state: '' },
  range: { preset: 'h24', from: null, to: null },
  events: null,
  refreshTimer: null,
};

const $ = (sel, root = document) => root.querySelector(sel);
const t = (key) => (TEXT[S.lang] && TEXT[S.lang][key]) || TEXT.en[key] || key;
const esc = (v) => String(v == null ? '' : v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const num = (v) => (v == null || Number.isNaN(v) ? '–' : Math.abs(v) >= 100 ? v.toFixed(1) : +v.toPrecision(4) + '');

// Bangkok wall time of ns since the epoch; the year in the Buddhist era when chosen.
function fmtTime(ns, short) {
  if (ns == null) return '–';
  const d = new Date(Number(ns) / 1e6 + BKK_OFFSET_MS);
  const p = (n) => String(n).padStart(2, '0');
  const year = d.getUTCFullYear() + (S.be ? 543 : 0);
  const date = `${p(d.getUTCDate())}/${p(d.getUTCMonth() + 1)}/${year}`;
  const time = `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
  if (short === 'time') return time;
  if (short === 'date') return date;
  return `${date} ${time}`;
}

function showError(msg) {
  const el = $('#error');
  el.textContent = msg || '';
  el.hidden = !msg;
}

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (S.token) headers.Authorization = `Token ${S.token}`;
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401) askToken();
  if (!r.ok) {
    let msg = `${r.status}`;
    try { msg = (await r.json()).message || msg; } catch (_) { /* not JSON */ }
    throw new HttpError(r.status, msg);
  }
  return opts.raw ? r : r.json();
}

// ---- names from the registry and catalog ----

function areaName(a) { return S.lang === 'th' ? (a.name_th || a.name_en) : a.name_en; }
function paramName(p) { return S.lang === 'th' ? (p.name_th || p.name_en) : p.name_en; }
function factories() {
  const out = [];
  for (const a of (S.site ? S.site.areas : [])) for (const f of a.factories) out.push({ area: a, f });
  return out;
}
function findFactory(id) { return factories().find((x) => x.f.id === id); }
function findParam(factory, point, code) {
  const hit = findFactory(factory);
  const pt = hit && hit.f.points.find((p) => p.id === point);
  return (pt && pt.parameters.find((p) => p.code === code)) || { code, name_en: code, name_th: null, unit: '' };
}

// ---- state of a factory at a glance ----

function openAlerts(factoryId) {
  return [...S.alerts.values()].filter((a) => a.state !== 'resolved' && (!factoryId || a.factory === factoryId));
}

// The worst condition wins: an exceedance, then a faulty sensor, then silence, then periods
// that could not be judged; compliant only when every judged limit's latest closed period is.
function factoryState(id) {
  const open = openAlerts(id);
  const series = (S.status ? S.status.series : []).filter((s) => s.factory === id);
  const outcomes = series.flatMap((s) => s.judgements.map((j) => j.current && j.current.outcome).filter(Boolean));
  if (open.some((a) => a.kind === 'exceedance') || outcomes.includes('exceeds')) return 'exceeding';
  if (open.some((a) => a.kind === 'sensor_fault')) return 'sensor_fault';
  if (open.some((a) => a.kind === 'no_data') || !series.some((s) => s.latest)) return 'no_data';
  if (outcomes.length === 0 || outcomes.some((o) => o === 'insufficient_data' || o === 'cannot_correct')) return 'insufficient_data';
  return 'compliant';
}

// ---- alerts ----

function alertHtml(a, withFactory) {
  const hit = findFactory(a.factory);
  const fname = hit ? hit.f.name : a.factory;
  const pname = a.parameter ? paramName(findParam(a.factory, a.point, a.parameter)) : '';
  // Only write (own factory, the only one it sees) and admin tokens may acknowledge.
  const kind = S.site && S.site.scope ? S.site.scope.kind : 'anonymous';
  const canAck = (a.state === 'pending' || a.state === 'firing') && (kind === 'admin' || kind === 'write');
  const hist = [
    `${t('opened')} ${fmtTime(a.pending_ns)}`,
    a.firing_ns ? `${t('fired')} ${fmtTime(a.firing_ns)}` : '',
    a.ack ? `${t('acknowledged')} ${fmtTime(a.ack.at_ns)}` : '',
    a.resolved_ns ? `${t('resolved')} ${fmtTime(a.resolved_ns)}` : '',
  ].filter(Boolean).join(' · ');
  return `<li class="alert sev-${esc(a.severity)}" data-alert-id="${a.id}" data-state="${esc(a.state)}" data-kind="${esc(a.kind)}" data-factory="${esc(a.factory)}">
  <div class="head"><strong>${esc(t(a.kind))}</strong>
    <span class="badge st-${esc(a.state)}">${esc(t(a.state))}</span>
    ${withFactory ? `<a href="#/factory/${encodeURIComponent(a.factory)}">${esc(fname)}</a>` : ''}
    <span>${esc(a.point)}${pname ? ' · ' + esc(pname) : ''}</span>
    ${a.value != null ? `<span>${esc(num(a.value))}${a.limit ? ' ' + esc(a.limit.unit) + ' (' + esc(a.limit.describe) + ')' : ''}</span>` : ''}
    <span class="muted">${t('since')} ${fmtTime(a.since_ns)}</span></div>
  <div class="summary muted" title="${esc(a.summary)}">${esc(summaryText(a, pname))}</div>
  ${a.ack ? `<div class="ackinfo">${t('acked_by')} ${esc(a.ack.by)} ${t('at')} ${fmtTime(a.ack.at_ns)}: “<span class="ack-comment">${esc(a.ack.comment)}</span>”</div>` : ''}
  <div class="history">${t('history')}: ${hist}</div>
  ${canAck ? `<details class="ackbox"><summary>${esc(t('acknowledge'))}…</summary><form class="ack" data-id="${a.id}"><textarea name="comment" placeholder="${esc(t('comment'))}"></textarea><button type="submit">${esc(t('send'))}</button></form></details>` : ''}
</li>`;
}

// The server words its summaries in English; in Thai the board words the common kinds from
// the alert's fields (the English one stays as the tooltip).
function summaryText(a, pname) {
  if (S.lang !== 'th') return a.summary;
  if (a.kind === 'exceedance' && a.limit && a.value != null) {
    const by = a.limit.permit ? `ใบอนุญาต ${a.limit.permit}` : `${a.limit.standard || ''} ข้อ ${a.limit.clause || ''}`;
    return `${pname} ${num(a.value)} ${a.limit.unit} เกินค่ามาตรฐาน ${a.limit.describe} (${by}) ตั้งแต่ ${fmtTime(a.since_ns)}`;
  }
  if (a.kind === 'no_data') return `ไม่ได้รับข้อมูลจาก ${a.point} ตั้งแต่ ${fmtTime(a.since_ns)}`;
  return a.summary;
}

function sortAlerts(list) {
  const sev = { critical: 0, warning: 1, info: 2 };
  return list.sort((a, b) => (sev[a.severity] ?? 3) - (sev[b.severity] ?? 3) || b.id - a.id);
}

async function ack(id, comment) {
  try {
    const r = await api(`/api/v1/alerts/${id}/ack`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ comment }),
    });
    S.alerts.set(r.alert.id, r.alert);
    showError('');
    render();
  } catch (e) {
    showError(`${t('ack_failed')}: ${e.message}`);
  }
}

document.addEventListener('submit', (ev) => {
  const form = ev.target.closest('form.ack');
  if (!form) return;
  ev.preventDefault();
  ack(Number(form.dataset.id), form.elements.comment.value);
});

// ---- live events ----

function connectEvents() {
  if (S.events) S.events.close();
  const url = '/api/v1/events' + (S.token ? `?token=${encodeURIComponent(S.token)}` : '');
  const es = new EventSource(url);
  S.events = es;
  const live = (on) => { const el = $('#live'); el.className = `live ${on ? 'on' : 'off'}`; el.dataset.i18n = on ? 'live_on' : 'live_off'; el.textContent = t(el.dataset.i18n); };
  // After a reconnection (or a lag) events may have been missed: the API has them all.
  es.onopen = () => { live(true); loadAlerts().then(render).catch(() => {}); };
  es.onerror = () => live(false);
  es.addEventListener('alert', (ev) => {
    const a = JSON.parse(ev.data);
    S.alerts.set(a.id, a);
    render();
    scheduleStatus();
  });
  es.addEventListener('revision', scheduleStatus);
  es.addEventListener('lagged', () => { loadAlerts().then(render); scheduleStatus(); });
}

function scheduleStatus() {
  clearTimeout(S.refreshTimer);
  S.refreshTimer = setTimeout(() => loadStatus().then(render).catch(() => {}), 500);
}

// ---- loading ----

async function loadSite() { S.site = await api('/api/v1/site'); }
async function loadStatus() { S.status = await api('/api/v1/status'); }
async function loadAlerts() {
  const r = await api('/api/v1/alerts');
  S.alerts = new Map(r.alerts.map((a) => [a.id, a]));
}

// ---- views ----

function route() {
  const h = location.hash.replace(/^#\/?/, '');
  const [view, arg] = h.split('/');
  return { view: view || 'overview', arg: arg ? decodeURIComponent(arg) : null };
}

// Re-rendering must not lose a comment being typed into an acknowledgement form.
function keepForms(fn) {
  const kept = [...document.querySelectorAll('form.ack')].map((f) => ({ id: f.dataset.id, v: f.elements.comment.value, open: f.parentElement.open, focus: document.activeElement === f.elements.comment }));
  fn();
  for (const k of kept) {
    const f = document.querySelector(`form.ack[data-id="${k.id}"]`);
    if (!f) continue;
    f.elements.comment.value = k.v;
    f.parentElement.open = k.open;
    if (k.focus) f.elements.comment.focus();
  }
}

let factoryToken = 0; // the factory page's data loads are async: only the newest one renders

function render() {
  document.documentElement.lang = S.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('#lang').textContent = S.lang === 'th' ? 'English' : 'ไทย';
  $('#be').checked = S.be;
  const r = route();
  if (!S.site) return;
  if (r.view === 'factory') keepForms(() => renderFactoryFrame(r.arg));
  else if (r.view === 'indicators') renderIndicatorsOnce();
  else keepForms(renderOverview);
}

function options(list, selected) {
  return list.map(([v, label]) => `<option value="${esc(v)}"${v === selected ? ' selected' : ''}>${esc(label)}</option>`).join('');
}

function renderOverview() {
  const F = S.filters;
  const areas = S.site.areas;
  const inScope = factories()
    .filter(({ area, f }) => (!F.area || area.id === F.area) && (!F.kind || f.points.some((p) => p.kind === F.kind)))
    .map(({ area, f }) => ({ area, f, state: factoryState(f.id), open: openAlerts(f.id).length }));
  const counts = Object.fromEntries(STATES.map((st) => [st, inScope.filter((r) => r.state === st).length]));
  const rows = inScope
    .filter((r) => !F.state || r.state === F.state)
    .sort((a, b) => (b.open > 0) - (a.open > 0) || STATES.indexOf(a.state) - STATES.indexOf(b.state) || a.f.name.localeCompare(b.f.name));
  const visible = new Set(rows.map((r) => r.f.id));
  const open = sortAlerts(openAlerts().filter((a) => visible.has(a.factory)));
  $('#main').innerHTML = `
<h1 data-view="overview">${esc(t('overview'))}</h1>
<div class="filters">
  <label>${esc(t('area'))} <select id="f-area">${options([['', t('all')], ...areas.map((a) => [a.id, `${areaName(a)} (${a.province})`])], F.area)}</select></label>
  <label>${esc(t('type'))} <select id="f-kind">${options([['', t('all')], ['effluent', t('effluent')], ['emission', t('emission')]], F.kind)}</select></label>
  <label>${esc(t('state'))} <select id="f-state">${options([['', t('all')], ...STATES.map((s) => [s, t(s)])], F.state)}</select></label>
</div>
<div class="filters" id="state-counts">${STATES.map((st) => `<button type="button" class="state s-${st}" data-count-state="${st}" data-count="${counts[st]}">${esc(t(st))}: ${counts[st]}</button>`).join('')}</div>
<h2>${esc(t('open_alerts'))} (<span id="open-count">${open.length}</span>)</h2>
<ul class="alerts" id="open-alerts">${open.length ? open.map((a) => alertHtml(a, true)).join('') : `<li class="muted">${esc(t('no_open_alerts'))}</li>`}</ul>
<h2>${esc(t('factories'))} (${rows.length})</h2>
<div class="grid" id="factories">${rows.map(({ area, f, state, open }) => {
    const latest = (S.status ? S.status.series : []).filter((s) => s.factory === f.id && s.latest).map((s) => s.latest.time_ns);
    return `<a class="factory s-${state}" href="#/factory/${encodeURIComponent(f.id)}" data-factory="${esc(f.id)}" data-state="${state}">
  <div class="name">${esc(f.name)}</div>
  <div><span class="state s-${state}">${esc(t(state))}</span>${open ? ` <span class="badge st-firing">${esc(t('open_n'))}: ${open}</span>` : ''}</div>
  <div class="meta">${esc(areaName(area))} · ${esc(f.points.map((p) => `${p.id} (${t(p.kind)})`).join(', '))}</div>
  <div class="meta">${esc(t('latest'))}: ${latest.length ? fmtTime(Math.max(...latest)) : '–'}</div>
</a>`;
  }).join('')}</div>`;
  for (const b of document.querySelectorAll('#state-counts button')) {
    b.addEventListener('click', () => { S.filters.state = S.filters.state === b.dataset.countState ? '' : b.dataset.countState; render(); });
  }
  for (const [id, key] of [['#f-area', 'area'], ['#f-kind', 'kind'], ['#f-state', 'state']]) {
    $(id).addEventListener('change', (ev) => { S.filters[key] = ev.target.value; render(); });
  }
}

// ---- factory page ----

function rangeNs() {
  const now = Date.now();
  const spans = { h6: 6 * 3600e3, h24: 24 * 3600e3, d7: 7 * 86400e3, d30: 30 * 86400e3 };
  if (S.range.preset === 'custom' && S.range.from && S.range.to) {
    return [S.range.from * 1e6, S.range.to * 1e6];
  }
  const span = spans[S.range.preset] || spans.h24;
  return [(now - span) * 1e6, (now + 60e3) * 1e6];
}

// Local input value (Bangkok wall time) ↔ ms since the epoch.
const toInput = (ms) => new Date(ms + BKK_OFFSET_MS).toISOString().slice(0, 16);
const fromInput = (v) => Date.parse(v + ':00Z') - BKK_OFFSET_MS;

function renderFactoryFrame(id) {
  const hit = findFactory(id);
  if (!hit) {
    $('#main').innerHTML = `<p>${esc(t('unknown_factory'))}: ${esc(id)}</p><p><a href="#/">${esc(t('back'))}</a></p>`;
    return;
  }
  const { area, f } = hit;
  const state = factoryState(f.id);
  const [from, to] = rangeNs();
  const existing = $('#factory-page');
  const alerts = sortAlerts([...S.alerts.values()].filter((a) => a.factory === f.id));
  const alertsHtml = alerts.length ? alerts.map((a) => alertHtml(a, false)).join('') : `<li class="muted">${esc(t('no_open_alerts'))}</li>`;
  if (existing && existing.dataset.factory === f.id && existing.dataset.lang === S.lang && existing.dataset.be === String(S.be)) {
    // Live update: the header and alerts change, the charts stay (they reload on demand).
    $('#factory-state').className = `state s-${state}`;
    $('#factory-state').textContent = t(state);
    $('#factory-state').dataset.state = state;
    $('#factory-alerts').innerHTML = alertsHtml;
    return;
  }
  $('#main').innerHTML = `<div id="factory-page" data-factory="${esc(f.id)}" data-lang="${S.lang}" data-be="${S.be}">
<p><a href="#/">← ${esc(t('back'))}</a></p>
<h1 data-view="factory">${esc(f.name)} <span id="factory-state" class="state s-${state}" data-state="${state}">${esc(t(state))}</span></h1>
<p class="muted">${esc(areaName(area))} (${esc(area.province)}) · ${esc(t('category'))} ${esc(f.category)}${f.diw_registration ? ' · ' + esc(f.diw_registration) : ''}</p>
<div class="filters">
  <label>${esc(t('range'))} <select id="r-preset">${options(['h6', 'h24', 'd7', 'd30', 'custom'].map((k) => [k, t(k)]), S.range.preset)}</select></label>
  <label>${esc(t('from'))} <input type="datetime-local" id="r-from" value="${toInput(from / 1e6)}"></label>
  <label>${esc(t('to'))} <input type="datetime-local" id="r-to" value="${toInput(to / 1e6)}"></label>
  <button id="r-show" type="button">${esc(t('show'))}</button>
</div>
<h2>${esc(t('alerts_of_factory'))}</h2>
<ul class="alerts" id="factory-alerts">${alertsHtml}</ul>
<div id="charts"><p class="muted">${esc(t('loading'))}</p></div>
</div>`;
  $('#r-preset').addEventListener('change', (ev) => { S.range.preset = ev.target.value; if (S.range.preset !== 'custom') { $('#factory-page').dataset.factory = ''; render(); } });
  $('#r-show').addEventListener('click', () => {
    S.range = { preset: 'custom', from: fromInput($('#r-from').value), to: fromInput($('#r-to').value) };
    $('#factory-page').dataset.factory = '';
    render();
  });
  loadCharts(f, from, to);
}

async function loadCharts(f, from, to) {
  const mine = ++factoryToken;
  const span_s = (to - from) / 1e9;
  const every_s = Math.max(1, Math.ceil(span_s / 400));
  const q = `factory=${encodeURIComponent(f.id)}&from_ns=${Math.floor(from)}&to_ns=${Math.ceil(to)}`;
  try {
    const [readings, periods, episodes, avail, status] = await Promise.all([
      api(`/api/v1/readings?${q}&every_s=${every_s}`),
      api(`/api/v1/periods?${q}&max_rows=20000`),
      api(`/api/v1/episodes?${q}`),
      api(`/api/v1/availability?${q}`),
      api(`/api/v1/status?factory=${encodeURIComponent(f.id)}`),
    ]);
    if (mine !== factoryToken || !$('#charts')) return;
    const html = [];
    for (const p of f.points) {
      for (const par of p.parameters) {
        const match = (x) => x.point === p.id && x.parameter === par.code;
        const series = readings.series.find(match);
        const st = status.series.find(match);
        html.push(chartHtml({
          point: p, param: par, from, to, every_s,
          buckets: series ? series.buckets : [],
          periods: periods.periods.filter(match),
          episodes: episodes.episodes.filter(match),
          limits: st ? st.judgements.map((j) => j.limit) : [],
          days: avail.days.filter(match),
        }));
      }
    }
    $('#charts').innerHTML = html.join('');
  } catch (e) {
    if (mine === factoryToken && $('#charts')) $('#charts').innerHTML = `<p class="error">${esc(e.message)}</p>`;
  }
}

const OUTCOME_COLOUR = { compliant: '#2e7d32', exceeds: '#c62828', insufficient_data: '#9e9e9e', cannot_correct: '#ef6c00' };

function chartHtml(c) {
  const W = 800, H = 230, L = 56, R = 12, T = 18, B = 26;
  const x = (ns) => L + ((ns - c.from) / (c.to - c.from)) * (W - L - R);
  const values = [];
  for (const b of c.buckets) values.push(b.min, b.max);
  for (const l of c.limits) { if (l.max != null) values.push(l.max); if (l.min != null) values.push(l.min); }
  for (const p of c.periods) if (p.value != null && p.start_ns === p.end_ns) values.push(p.value);
  let lo = Math.min(0, ...values), hi = Math.max(1, ...values);
  if (!values.length) { lo = 0; hi = 1; }
  const pad = (hi - lo) * 0.08 || 1;
  hi += pad; if (lo < 0) lo -= pad;
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const clampX = (ns) => Math.max(L, Math.min(W - R, x(ns)));
  const parts = [];
  // Judged periods, shaded by result; grab samples as dots at their value.
  for (const p of c.periods) {
    const colour = OUTCOME_COLOUR[p.outcome] || '#9e9e9e';
    if (p.end_ns > p.start_ns) {
      if (p.end_ns < c.from || p.start_ns > c.to) continue;
      const x0 = clampX(p.start_ns), x1 = clampX(p.end_ns);
      parts.push(`<rect class="period" data-outcome="${esc(p.outcome)}" x="${x0.toFixed(1)}" y="${T}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${H - T - B}" fill="${colour}" fill-opacity="0.13"><title>${esc(t(p.outcome === 'exceeds' ? 'p_exceeds' : p.outcome === 'compliant' ? 'p_compliant' : p.outcome === 'cannot_correct' ? 'p_cannot' : 'p_insufficient'))} ${fmtTime(p.start_ns)}–${fmtTime(p.end_ns, 'time')}: ${esc(num(p.value))} ${esc(p.limit.unit)}${p.samples > 1 ? ` (${p.samples} ${esc(t('samples'))})` : ''}${p.reason ? ' — ' + esc(p.reason) : ''}</title></rect>`);
    } else if (p.value != null && p.start_ns >= c.from && p.start_ns <= c.to) {
      parts.push(`<circle class="period" data-outcome="${esc(p.outcome)}" cx="${x(p.start_ns).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="4" fill="none" stroke="${colour}" stroke-width="2"><title>${fmtTime(p.start_ns)}: ${esc(num(p.value))} ${esc(p.limit.unit)} (${esc(p.outcome)})</title></circle>`);
    }
  }
  // Readings: min–max band and the mean line, broken where data is missing.
  const gap = c.every_s * 2.5e9;
  let band = '', line = '', dots = '';
  c.buckets.forEach((b, i) => {
    const bx = x(b.start_ns + c.every_s * 5e8);
    const joinsPrev = i > 0 && b.start_ns - c.buckets[i - 1].start_ns <= gap;
    const joinsNext = i + 1 < c.buckets.length && c.buckets[i + 1].start_ns - b.start_ns <= gap;
    line += `${joinsPrev ? 'L' : 'M'}${bx.toFixed(1)},${y(b.mean).toFixed(1)}`;
    band += `<line x1="${bx.toFixed(1)}" x2="${bx.toFixed(1)}" y1="${y(b.min).toFixed(1)}" y2="${y(b.max).toFixed(1)}" stroke="#1565c0" stroke-opacity="0.3" stroke-width="3"/>`;
    // A reading with no neighbour would be an invisible one-point line.
    if (!joinsPrev && !joinsNext) dots += `<circle class="reading" cx="${bx.toFixed(1)}" cy="${y(b.mean).toFixed(1)}" r="2.5" fill="#1565c0"><title>${fmtTime(b.start_ns)}: ${esc(num(b.mean))} (n=${b.count})</title></circle>`;
  });
  parts.push(band);
  if (line) parts.push(`<path d="${line}" fill="none" stroke="#1565c0" stroke-width="1.6"/>`);
  parts.push(dots);
  // Limits.
  // An emission limit applies to the value corrected to its reference O₂: the label says so,
  // since the line is drawn over the readings as measured.
  for (const l of c.limits) {
    const basis = l.reference_o2_pct != null ? ` ${t('at_o2')} ${l.reference_o2_pct} % O₂` : '';
    [l.max, l.min].filter((v) => v != null).forEach((v, i) => {
      const label = i === 0 ? `<text x="${W - R - 4}" y="${(y(v) - 4).toFixed(1)}" text-anchor="end" font-size="11" fill="#c62828">${esc(t('limit'))} ${esc(l.describe)}${esc(basis)} (${esc(t(l.averaging))})</text>` : '';
      parts.push(`<line class="limit" x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#c62828" stroke-dasharray="6 4" stroke-width="1.4"/>${label}`);
    });
  }
  // Episodes: a bar along the top.
  for (const e of c.episodes) {
    const x0 = clampX(e.start_ns), x1 = Math.max(x0 + 4, clampX(e.end_ns));
    parts.push(`<rect class="episode" x="${x0.toFixed(1)}" y="${T - 12}" width="${(x1 - x0).toFixed(1)}" height="6" fill="#c62828"><title>${esc(t('episode'))}: ${fmtTime(e.start_ns)}–${fmtTime(e.end_ns)}, ${e.periods} × ${esc(e.limit.averaging)}, peak ${esc(num(e.peak))} ${esc(e.limit.unit)}</title></rect>`);
  }
  // Axes.
  const axes = [`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#888"/>`, `<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#888"/>`];
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    axes.push(`<text x="${L - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11" fill="#555">${esc(num(v))}</text>`);
  }
  const multiDay = c.to - c.from > 36 * 3600e9;
  for (let i = 0; i <= 4; i++) {
    const ns = c.from + ((c.to - c.from) * i) / 4;
    axes.push(`<text x="${x(ns).toFixed(1)}" y="${H - 8}" text-anchor="${i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}" font-size="11" fill="#555">${esc(multiDay ? fmtTime(ns, 'date') : fmtTime(ns, 'time'))}</text>`);
  }
  const days = c.days.map((d) => `<span class="${d.meets === false ? 'short' : d.meets ? 'meets' : ''}" title="${d.valid}/${d.expected}">${esc(fmtTime(d.day_start_ns, 'date'))}: ${d.availability_pct.toFixed(1)} %</span>`).join('');
  return `<section class="chart" data-point="${esc(c.point.id)}" data-parameter="${esc(c.param.code)}">
<div class="title"><strong>${esc(paramName(c.param))}</strong><span class="muted">${esc(c.point.id)} · ${esc(t(c.point.kind))} · ${esc(c.param.unit || '')}</span></div>
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(paramName(c.param))}">${parts.join('')}${axes.join('')}</svg>
${c.buckets.length ? '' : `<p class="muted">${esc(t('no_readings'))}</p>`}
<div class="legend"><span><i class="key-reading"></i>${esc(t('reading'))}</span><span><i class="key-limit"></i>${esc(t('limit'))}</span>
<span><i class="key-compliant"></i>${esc(t('p_compliant'))}</span><span><i class="key-exceeds"></i>${esc(t('p_exceeds'))}</span>
<span><i class="key-insufficient"></i>${esc(t('p_insufficient'))}</span><span><i class="key-episode"></i>${esc(t('episode'))}</span></div>
<div class="avail"><strong>${esc(t('daily_availability'))}:</strong> ${days || '–'}</div>
</section>`;
}

// ---- indicators ----

function renderIndicatorsOnce() {
  // Live events re-render the page: the indicators view is redrawn only when the language
  // or the era changes, not at every alert.
  const page = $('#ind-page');
  if (page && page.dataset.key === `${S.lang}/${S.be}`) return;
  const areas = S.site.areas;
  const today = new Date(Date.now() + BKK_OFFSET_MS).toISOString().slice(0, 10);
  const monthAgo = new Date(Date.now() + BKK_OFFSET_MS - 30 * 86400e3).toISOString().slice(0, 10);
  const prev = $('#ind-area');
  const state = prev ? { area: prev.value, from: $('#ind-from').value, to: $('#ind-to').value } : { area: areas[0] ? areas[0].id : '', from: monthAgo, to: today };
  $('#main').innerHTML = `<div id="ind-page" data-key="${S.lang}/${S.be}"><h1 data-view="indicators">${esc(t('indicators'))}</h1>
<div class="filters">
  <label>${esc(t('area'))} <select id="ind-area">${options(areas.map((a) => [a.id, `${areaName(a)} (${a.province})`]), state.area)}</select></label>
  <label>${esc(t('from'))} <input type="date" id="ind-from" value="${esc(state.from)}"></label>
  <label>${esc(t('to'))} <input type="date" id="ind-to" value="${esc(state.to)}"></label>
  <button id="ind-show" type="button">${esc(t('show'))}</button>
  <button id="ind-csv" type="button">${esc(t('export_csv'))}</button>
  <button id="ind-xlsx" type="button">${esc(t('export_xlsx'))}</button>
</div>
<p class="muted" id="ind-url"></p>
<div id="ind-out"></div></div>`;
  const query = (format) => {
    // Bangkok days: from 00:00 of the first to 00:00 after the last.
    const from = `${$('#ind-from').value}T00:00:00+07:00`;
    const toDay = new Date(Date.parse(`${$('#ind-to').value}T00:00:00Z`) + 86400e3).toISOString().slice(0, 10);
    const q = `/api/v1/indicators?area=${encodeURIComponent($('#ind-area').value)}&from=${encodeURIComponent(from)}&to=${encodeURIComponent(`${toDay}T00:00:00+07:00`)}`;
    // B.E. dates in the files when the board shows them.
    return format ? `${q}&format=${format}${S.be ? '&be=true' : ''}` : q;
  };
  const show = async () => {
    $('#ind-url').textContent = `GET ${query()}`;
    $('#ind-out').innerHTML = `<p class="muted">${esc(t('loading'))}</p>`;
    try {
      const doc = await api(query());
      $('#ind-out').innerHTML = `<pre>${esc(JSON.stringify(doc, null, 2))}</pre>`;
    } catch (e) {
      $('#ind-out').innerHTML = `<p class="error">${esc(t('indicators_missing'))}: ${esc(e.message)}</p>`;
    }
  };
  // Downloads go through fetch so the token travels in the header, never in a link.
  const download = async (format) => {
    try {
      const r = await api(query(format), { raw: true });
      const blob = await r.blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `eitwatch-indicators-${$('#ind-area').value}-${$('#ind-from').value}-${$('#ind-to').value}.${format}`;
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) {
      showError(`${t('indicators_missing')}: ${e.message}`);
    }
  };
  $('#ind-show').addEventListener('click', show);
  $('#ind-csv').addEventListener('click', () => download('csv'));
  $('#ind-xlsx').addEventListener('click', () => download('xlsx'));
  show();
}

// ---- token, preferences, start ----

function askToken() {
  const d = $('#token-dialog');
  if (d.open) return;
  $('#token-input').value = S.token || '';
  d.showModal();
}

function saveToken(value) {
  S.token = value;
  localStorage.setItem('eitwatch.token', value);
  $('#token-dialog').close();
  start();
}

async function start() {
  try {
    await Promise.all([loadSite(), loadStatus(), loadAlerts()]);
    showError('');
    connectEvents();
    render();
  } catch (e) {
    showError(e.message);
  }
}

function init() {
  $('#token-form').addEventListener('submit', (ev) => { ev.preventDefault(); saveToken($('#token-input').value.trim()); });
  $('#token-none').addEventListener('click', () => saveToken(''));
  $('#token-change').addEventListener('click', askToken);
  $('#lang').addEventListener('click', () => { S.lang = S.lang === 'th' ? 'en' : 'th'; localStorage.setItem('eitwatch.lang', S.lang); render(); });
  $('#be').addEventListener('change', (ev) => { S.be = ev.target.checked; localStorage.setItem('eitwatch.be', S.be ? '1' : '0'); render(); });
  window.addEventListener('hashchange', render);
  // The status is polled as well: silence and closing periods change states without events.
  setInterval(() => {
    if (!S.site) return;
    loadStatus().then(render).catch(() => {});
    // A factory page on a moving range ("last 24 hours") follows the clock.
    const r = route();
    const hit = r.view === 'factory' && S.range.preset !== 'custom' && findFactory(r.arg);
    if (hit) { const [from, to] = rangeNs(); loadCharts(hit.f, from, to); }
  }, 30000);
  render();
  if (S.token == null) askToken();
  else start();
}

init();
