// eitwatch board: the provincial overview, live alerts, factory charts and indicators.
// Plain JS without a build step. Charts are drawn by uPlot (vendored in `vendor/`, served by
// the server from its binary like every other asset), so the board works with no internet.
'use strict';

const BKK_OFFSET_MS = 7 * 3600 * 1000; // Asia/Bangkok is UTC+07:00 all year
const STATES = ['exceeding', 'sensor_fault', 'no_data', 'insufficient_data', 'compliant'];

const TEXT = {
  en: {
    title: 'eitwatch compliance board', nav_overview: 'Overview', nav_indicators: 'Indicators',
    be: 'B.E. dates', token_change: 'Token', live_live: 'live', live_offline: 'offline', live_reconnecting: 'reconnecting…', live_catching_up: 'catching up…',
    lang_switch: 'ภาษาไทย / English',
    token_title: 'Access token', token_help: 'Paste the token the provincial office gave you. It is kept in this browser only.',
    token_save: 'Save', token_none: 'No token (loopback)', token_label: 'Token',
    overview: 'Area overview', at_o2: 'at', receiving_water_rule: 'receiving-water TDS rule', instantaneous: 'grab sample', hourly: 'hourly mean', daily: 'daily mean', samples: 'grab samples', open_n: 'open alerts', open_alerts: 'Open alerts', no_open_alerts: 'No open alerts.', factories: 'Factories',
    area: 'Area', type: 'Type', state: 'State', all: 'All', effluent: 'Effluent', emission: 'Stack emission', ambient: 'Ambient',
    compliant: 'Compliant', exceeding: 'Exceeding', no_data: 'No data', sensor_fault: 'Sensor fault', insufficient_data: 'Insufficient data',
    exceedance: 'Exceedance', availability: 'Availability', deadline: 'Deadline',
    pending: 'pending', firing: 'firing', acknowledged: 'acknowledged', resolved: 'resolved',
    acknowledge: 'Acknowledge', comment: 'Comment', send: 'Send', cancel: 'Cancel',
    acked_by: 'Acknowledged by', at: 'at', since: 'since', history: 'History', opened: 'opened', fired: 'fired',
    points: 'points', latest: 'Latest', category: 'category',
    factory: 'Factory', range: 'Range', fit: 'Fit the data', h6: 'Last 6 hours', h24: 'Last 24 hours', d7: 'Last 7 days', d30: 'Last 30 days', custom: 'Custom',
    from: 'From', to: 'To', show: 'Show', reading: 'reading', reading_band: 'min–max', limit: 'applied limit', episode: 'exceedance episode',
    p_compliant: 'compliant period', p_exceeds: 'exceeding period', p_insufficient: 'insufficient data', p_cannot: 'cannot correct',
    p_mixed: 'mixed period (compliant mean, exceeding grab samples)', grab_exceeds: 'exceeding grab sample',
    n_compliant: 'compliant', n_exceeding: 'exceeding',
    daily_availability: 'Daily availability', no_readings: 'No readings in this range.', alerts_of_factory: 'Alerts',
    indicators: 'Indicators', export_csv: 'Download CSV', export_xlsx: 'Download XLSX', print: 'Print / save as PDF',
    indicators_missing: 'The indicators API does not answer on this server', loading: 'Loading…',
    ack_failed: 'Acknowledgement refused', back: 'Back to the overview', unknown_factory: 'No such factory (or not within your token)',
    date_expected: 'expected a day as dd/mm/yyyy', datetime_expected: 'expected dd/mm/yyyy hh:mm', era_be: 'B.E.', era_ad: 'A.D.',
    no_such_day: 'there is no such day', range_order: '"To" must be after "From"',
    pan_left: 'Earlier', pan_right: 'Later', zoom_out: 'Zoom out', zoom_reset: 'Whole range', chart_help: 'Drag across the chart to zoom in; double-click for the whole range.',
    quality: 'quality', valid: 'valid', suspect: 'suspect', invalid: 'invalid', maintenance: 'maintenance', calibration: 'calibration',
    mean: 'mean', readings_n: 'readings', periods_table: 'Judged periods and marks', time: 'Time', end: 'End', what: 'What', value: 'Value', counts: 'Grab samples',
    period_kind: 'Period', month: 'Month', quarter: 'Quarter', fy: 'Fiscal year', which: 'Which',
    quarter_n: 'Quarter', fy_n: 'FY', report_for: 'Environmental indicators', compared_with: 'compared with', generated: 'generated',
    indicator: 'Indicator', current: 'Value', previous: 'Previous', change: 'Change', trend: 'Trend',
    evidence: 'Evidence', point: 'Point', parameter: 'Parameter', counted: 'Counted', used: 'Used', excluded: 'Left out', note: 'Why',
    episodes: 'Exceedance episodes', start: 'Start', periods_n: 'Periods', peak: 'Peak', ongoing: 'ongoing', no_episodes: 'No exceedance episodes in this period.',
    not_computed: 'not computed', pp: 'pp', u_count: '', u_h: 'h', u_kg: 'kg', u_t: 't',
    c_grab_periods: 'grab samples / periods', c_point_days: 'point-days', c_hours: 'hours', c_factories: 'factories', whole_area: 'the whole area',
    sf_summary: '{p}: the sensor reads {v}, which is not plausible', av_summary: '{p}: data availability below the required share', dl_summary: 'Deadline to report the outage of {point} is near',
  },
  th: {
    title: 'กระดานติดตามการปฏิบัติตามมาตรฐาน eitwatch', nav_overview: 'ภาพรวม', nav_indicators: 'ตัวชี้วัด',
    be: 'วันที่แบบ พ.ศ.', token_change: 'โทเคน', live_live: 'เชื่อมต่อสด', live_offline: 'ไม่ได้เชื่อมต่อ', live_reconnecting: 'กำลังเชื่อมต่อใหม่…', live_catching_up: 'กำลังรับข้อมูลที่พลาดไป…',
    lang_switch: 'ภาษาไทย / English',
    token_title: 'โทเคนสำหรับเข้าใช้งาน', token_help: 'วางโทเคนที่ได้รับจากสำนักงานอุตสาหกรรมจังหวัด โทเคนจะเก็บไว้ในเบราว์เซอร์นี้เท่านั้น',
    token_save: 'บันทึก', token_none: 'ไม่ใช้โทเคน (เครื่องเดียวกัน)', token_label: 'โทเคน',
    overview: 'ภาพรวมพื้นที่', at_o2: 'ที่', receiving_water_rule: 'ตามเกณฑ์ TDS ของแหล่งน้ำที่รับ', instantaneous: 'ตัวอย่างแบบจ้วง', hourly: 'ค่าเฉลี่ยรายชั่วโมง', daily: 'ค่าเฉลี่ยรายวัน', samples: 'ตัวอย่างแบบจ้วง', open_n: 'แจ้งเตือนที่เปิดอยู่', open_alerts: 'การแจ้งเตือนที่ยังเปิดอยู่', no_open_alerts: 'ไม่มีการแจ้งเตือนที่เปิดอยู่', factories: 'โรงงาน',
    area: 'พื้นที่', type: 'ประเภท', state: 'สถานะ', all: 'ทั้งหมด', effluent: 'น้ำทิ้ง', emission: 'อากาศจากปล่อง', ambient: 'บรรยากาศ',
    compliant: 'เป็นไปตามมาตรฐาน', exceeding: 'เกินมาตรฐาน', no_data: 'ไม่มีข้อมูล', sensor_fault: 'เครื่องมือวัดขัดข้อง', insufficient_data: 'ข้อมูลไม่เพียงพอ',
    exceedance: 'ค่าเกินมาตรฐาน', availability: 'ความครบถ้วนของข้อมูล', deadline: 'กำหนดเวลาแจ้ง',
    pending: 'รอยืนยัน', firing: 'กำลังแจ้งเตือน', acknowledged: 'รับทราบแล้ว', resolved: 'คลี่คลายแล้ว',
    acknowledge: 'รับทราบ', comment: 'หมายเหตุ', send: 'ส่ง', cancel: 'ยกเลิก',
    acked_by: 'รับทราบโดย', at: 'เมื่อ', since: 'ตั้งแต่', history: 'ประวัติ', opened: 'เริ่ม', fired: 'แจ้งเตือน',
    points: 'จุดตรวจวัด', latest: 'ค่าล่าสุด', category: 'จำพวก',
    factory: 'โรงงาน', range: 'ช่วงเวลา', fit: 'พอดีกับข้อมูล', h6: '6 ชั่วโมงล่าสุด', h24: '24 ชั่วโมงล่าสุด', d7: '7 วันล่าสุด', d30: '30 วันล่าสุด', custom: 'กำหนดเอง',
    from: 'ตั้งแต่', to: 'ถึง', show: 'แสดง', reading: 'ค่าที่วัดได้', reading_band: 'ต่ำสุด–สูงสุด', limit: 'ค่ามาตรฐานที่ใช้ตัดสิน', episode: 'เหตุการณ์เกินค่ามาตรฐาน',
    p_compliant: 'ช่วงเวลาที่เป็นไปตามมาตรฐาน', p_exceeds: 'ช่วงเวลาที่เกินค่ามาตรฐาน', p_insufficient: 'ข้อมูลไม่เพียงพอ', p_cannot: 'ปรับค่า O₂ ไม่ได้',
    p_mixed: 'ช่วงเวลาที่มีตัวอย่างแบบจ้วงเกินค่ามาตรฐานปนอยู่', grab_exceeds: 'ตัวอย่างแบบจ้วงที่เกินค่ามาตรฐาน',
    n_compliant: 'ผ่าน', n_exceeding: 'เกิน',
    daily_availability: 'ความครบถ้วนของข้อมูลรายวัน', no_readings: 'ไม่มีข้อมูลในช่วงเวลานี้', alerts_of_factory: 'การแจ้งเตือน',
    indicators: 'ตัวชี้วัด', export_csv: 'ดาวน์โหลด CSV', export_xlsx: 'ดาวน์โหลด XLSX', print: 'พิมพ์ / บันทึกเป็น PDF',
    indicators_missing: 'เซิร์ฟเวอร์นี้ยังไม่มีบริการตัวชี้วัด', loading: 'กำลังโหลด…',
    ack_failed: 'รับทราบไม่สำเร็จ', back: 'กลับไปหน้าภาพรวม', unknown_factory: 'ไม่พบโรงงานนี้ (หรือโทเคนไม่มีสิทธิ์)',
    date_expected: 'ต้องเป็นวันที่แบบ วว/ดด/ปปปป', datetime_expected: 'ต้องเป็น วว/ดด/ปปปป ชช:นน', era_be: 'พ.ศ.', era_ad: 'ค.ศ.',
    no_such_day: 'ไม่มีวันที่นี้', range_order: 'วันที่ "ถึง" ต้องอยู่หลังวันที่ "ตั้งแต่"',
    pan_left: 'ก่อนหน้า', pan_right: 'ถัดไป', zoom_out: 'ย่อ', zoom_reset: 'ทั้งช่วง', chart_help: 'ลากบนกราฟเพื่อขยาย ดับเบิลคลิกเพื่อดูทั้งช่วง',
    quality: 'คุณภาพข้อมูล', valid: 'ใช้ได้', suspect: 'น่าสงสัย', invalid: 'ใช้ไม่ได้', maintenance: 'ซ่อมบำรุง', calibration: 'สอบเทียบ',
    mean: 'ค่าเฉลี่ย', readings_n: 'ค่า', periods_table: 'ช่วงเวลาที่ตัดสินและเครื่องหมายบนกราฟ', time: 'เวลา', end: 'สิ้นสุด', what: 'ผลการตัดสิน', value: 'ค่า', counts: 'ตัวอย่างแบบจ้วง',
    period_kind: 'รอบรายงาน', month: 'เดือน', quarter: 'ไตรมาส', fy: 'ปีงบประมาณ', which: 'ช่วง',
    quarter_n: 'ไตรมาส', fy_n: 'ปีงบประมาณ', report_for: 'ตัวชี้วัดด้านสิ่งแวดล้อม', compared_with: 'เทียบกับ', generated: 'จัดทำเมื่อ',
    indicator: 'ตัวชี้วัด', current: 'ค่า', previous: 'รอบก่อน', change: 'เปลี่ยนแปลง', trend: 'แนวโน้ม',
    evidence: 'หลักฐาน', point: 'จุดตรวจวัด', parameter: 'พารามิเตอร์', counted: 'หน่วยนับ', used: 'ที่ใช้', excluded: 'ที่ไม่นับ', note: 'เหตุผล',
    episodes: 'เหตุการณ์เกินค่ามาตรฐาน', start: 'เริ่ม', periods_n: 'จำนวนช่วงเวลา', peak: 'ค่าสูงสุด', ongoing: 'ยังดำเนินอยู่', no_episodes: 'ไม่มีเหตุการณ์เกินค่ามาตรฐานในรอบนี้',
    not_computed: 'คำนวณไม่ได้', pp: 'จุดร้อยละ', u_count: '', u_h: 'ชม.', u_kg: 'กก.', u_t: 'ตัน',
    c_grab_periods: 'ตัวอย่าง / ช่วงเวลา', c_point_days: 'จุด-วัน', c_hours: 'ชั่วโมง', c_factories: 'โรงงาน', whole_area: 'ทั้งพื้นที่',
    sf_summary: '{p}: เครื่องมือวัดให้ค่า {v} ซึ่งเป็นไปไม่ได้', av_summary: '{p}: ความครบถ้วนของข้อมูลต่ำกว่าเกณฑ์', dl_summary: 'ใกล้ถึงกำหนดเวลาแจ้งเหตุขัดข้องของจุด {point}',
  },
};

const MONTHS = {
  en: ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'],
  th: ['มกราคม', 'กุมภาพันธ์', 'มีนาคม', 'เมษายน', 'พฤษภาคม', 'มิถุนายน', 'กรกฎาคม', 'สิงหาคม', 'กันยายน', 'ตุลาคม', 'พฤศจิกายน', 'ธันวาคม'],
};

// Display precision and typeset units: the catalog's (`display_decimals`, `unit_display` in
// /api/v1/site) when the server sends them; otherwise these.
const DECIMALS = {
  ph: 2, temp: 1, color: 0, tds: 0, tss: 0, bod: 0, cod: 0, sulfide: 2, cyanide: 3, oil_grease: 1, formaldehyde: 2,
  phenols: 2, free_chlorine: 2, pesticide: 3, tkn: 1, zn: 2, cr6: 3, cr3: 2, as: 3, cu: 2, hg: 4, cd: 3, ba: 2, se: 3,
  pb: 3, ni: 2, mn: 2, flow: 1, tsp: 0, so2: 0, nox: 0, co: 0, h2s: 1, trs: 1, hcl: 1, h2so4: 1, xylene: 0, cresol: 0,
  cl2: 1, sb: 2, o2: 1, opacity: 0,
};
const UNIT_DISPLAY = { degC: '°C', degF: '°F', 'm3/h': 'm³/h', 'm3/d': 'm³/d', 'mg/Nm3': 'mg/Nm³', 'ug/Nm3': 'µg/Nm³', 'g/Nm3': 'g/Nm³', 'mg/m3': 'mg/m³', 'ug/m3': 'µg/m³', m3: 'm³' };
const NAME_TH = { trs: 'ซัลเฟอร์รีดิวซ์ทั้งหมด' };

// B.E. dates are the default in Thai until the switch is used.
const storedBe = localStorage.getItem('eitwatch.be');
const S = {
  token: localStorage.getItem('eitwatch.token'),
  lang: localStorage.getItem('eitwatch.lang') || 'en',
  beChosen: storedBe != null,
  be: storedBe === '1',
  site: null,
  status: null,
  alerts: new Map(),
  filters: { area: '', kind: '', state: '' },
  range: { preset: 'fit', from: null, to: null },
  events: null,
  live: 'offline',
  lastEventId: '',
  reconnectTimer: null,
  refreshTimer: null,
  charts: [],
};
if (!S.beChosen) S.be = S.lang === 'th';

const $ = (sel, root = document) => root.querySelector(sel);
const t = (key) => (TEXT[S.lang] && TEXT[S.lang][key] != null ? TEXT[S.lang][key] : TEXT.en[key] != null ? TEXT.en[key] : key);
const tf = (key, vars) => t(key).replace(/\{(\w+)\}/g, (_, k) => (vars[k] == null ? '' : vars[k]));
const esc = (v) => String(v == null ? '' : v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

// A number as people write it: fixed decimals, digit groups.
function fmtNum(v, decimals) {
  if (v == null || Number.isNaN(v)) return '–';
  const d = Math.max(0, Math.min(6, decimals == null ? 2 : decimals));
  return new Intl.NumberFormat(S.lang === 'th' ? 'th-TH' : 'en-GB', { minimumFractionDigits: d, maximumFractionDigits: d }).format(v);
}
function decimalsOf(p) {
  if (p && Number.isInteger(p.display_decimals)) return p.display_decimals;
  return p && DECIMALS[p.code] != null ? DECIMALS[p.code] : 2;
}
const unitText = (u) => (u == null ? '' : UNIT_DISPLAY[u] || u);
function unitOf(p) { return p ? p.unit_display || unitText(p.unit) : ''; }
// A value of a parameter with its unit.
function fmtValue(v, p, unit) {
  const u = unit != null ? unitText(unit) : unitOf(p);
  return `${fmtNum(v, decimalsOf(p))}${u && u !== 'pH' ? ' ' + u : ''}`;
}
// Decimals for axis ticks `incr` apart.
const decimalsForStep = (incr) => { const s = String(+Number(incr).toPrecision(6)); return s.includes('.') ? Math.min(6, s.split('.')[1].length) : 0; };

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
  if (short === 'daymonth') return `${p(d.getUTCDate())}/${p(d.getUTCMonth() + 1)}`;
  if (short === 'seconds') return `${date} ${time}:${p(d.getUTCSeconds())}`;
  return `${date} ${time}`;
}

// ---- one date convention: text inputs dd/mm/yyyy [hh:mm] in the board's era ----

const eraLabel = () => t(S.be ? 'era_be' : 'era_ad');
function dateInput(id, label, ms, withTime) {
  const pattern = withTime ? '\\d{1,2}/\\d{1,2}/\\d{4} \\d{1,2}:\\d{2}' : '\\d{1,2}/\\d{1,2}/\\d{4}';
  const hint = withTime ? `dd/mm/yyyy hh:mm (${eraLabel()})` : `dd/mm/yyyy (${eraLabel()})`;
  const value = ms == null ? '' : withTime ? fmtTime(ms * 1e6) : fmtTime(ms * 1e6, 'date');
  return `<label>${esc(label)} <input type="text" class="date" id="${id}" inputmode="numeric" autocomplete="off" pattern="${pattern}" data-with-time="${withTime ? 1 : 0}" aria-describedby="${id}-hint" value="${esc(value)}" size="${withTime ? 16 : 10}"></label><span class="hint muted" id="${id}-hint">${esc(hint)}</span>`;
}

class InputError extends Error {}

// Bangkok wall time typed in the board's era → ms since the epoch; an error names the field.
function parseDateInput(el, label) {
  const withTime = el.dataset.withTime === '1';
  const raw = el.value.trim();
  const m = withTime ? /^(\d{1,2})\/(\d{1,2})\/(\d{4}) (\d{1,2}):(\d{2})$/.exec(raw) : /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(raw);
  const fail = (why) => {
    el.setAttribute('aria-invalid', 'true');
    el.focus();
    throw new InputError(`${label}: "${raw}" — ${why}`);
  };
  if (!m) fail(`${t(withTime ? 'datetime_expected' : 'date_expected')} (${eraLabel()})`);
  const [day, month, yearTyped, hour, minute] = [m[1], m[2], m[3], m[4] || '0', m[5] || '0'].map(Number);
  const year = yearTyped - (S.be ? 543 : 0);
  const ms = Date.UTC(year, month - 1, day, hour, minute);
  const back = new Date(ms);
  if (month < 1 || month > 12 || back.getUTCDate() !== day || back.getUTCMonth() !== month - 1 || hour > 23 || minute > 59) fail(t('no_such_day'));
  el.removeAttribute('aria-invalid');
  return ms - BKK_OFFSET_MS;
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
// The registry names provinces in English; the board names the industrial ones in Thai.
const PROVINCE_TH = {
  Bangkok: 'กรุงเทพมหานคร', Rayong: 'ระยอง', Chonburi: 'ชลบุรี', 'Chon Buri': 'ชลบุรี', Lampang: 'ลำปาง', 'Samut Prakan': 'สมุทรปราการ',
  'Samut Sakhon': 'สมุทรสาคร', 'Phra Nakhon Si Ayutthaya': 'พระนครศรีอยุธยา', Ayutthaya: 'พระนครศรีอยุธยา', Chachoengsao: 'ฉะเชิงเทรา',
  Saraburi: 'สระบุรี', Songkhla: 'สงขลา', 'Pathum Thani': 'ปทุมธานี', Prachinburi: 'ปราจีนบุรี', 'Prachin Buri': 'ปราจีนบุรี',
  'Nakhon Ratchasima': 'นครราชสีมา', 'Khon Kaen': 'ขอนแก่น', 'Chiang Mai': 'เชียงใหม่', Lamphun: 'ลำพูน', Ratchaburi: 'ราชบุรี',
  'Surat Thani': 'สุราษฎร์ธานี', 'Nakhon Si Thammarat': 'นครศรีธรรมราช', 'Nakhon Pathom': 'นครปฐม', Kanchanaburi: 'กาญจนบุรี',
};
function provinceName(a) { return S.lang === 'th' ? PROVINCE_TH[a.province] || a.province : a.province; }
function paramName(p) { return S.lang === 'th' ? (p.name_th || NAME_TH[p.code] || p.name_en) : p.name_en; }
function factories() {
  const out = [];
  for (const a of (S.site ? S.site.areas : [])) for (const f of a.factories) out.push({ area: a, f });
  return out;
}
function findFactory(id) { return factories().find((x) => x.f.id === id); }
function factoryName(id) { const hit = findFactory(id); return hit ? hit.f.name : id; }
function findParam(factory, point, code) {
  const hit = findFactory(factory);
  const pt = hit && hit.f.points.find((p) => p.id === point);
  return (pt && pt.parameters.find((p) => p.code === code)) || anyParam(code);
}
// A parameter by code from any point of the site (the indicators name parameters alone).
function anyParam(code) {
  for (const { f } of factories()) for (const p of f.points) for (const par of p.parameters) if (par.code === code) return par;
  return { code, name_en: code, name_th: NAME_TH[code] || null, unit: '' };
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

// The bound a limit applies, in words: the server's (`applied`/`describe`) with typeset units.
function limitText(l) {
  if (!l) return '';
  if (l.applied_max != null && l.max != null && l.applied_max !== l.max) {
    return `≤ ${fmtNum(l.applied_max, 0)} ${unitText(l.unit || '')} (${t('receiving_water_rule')})`;
  }
  const d = l.applied_describe || l.describe || '';
  return d.replace(/(mg\/Nm3|ug\/Nm3|m3\/h|degC)/g, (u) => unitText(u));
}

function alertHtml(a, withFactory) {
  const fname = factoryName(a.factory);
  const par = a.parameter ? findParam(a.factory, a.point, a.parameter) : null;
  const pname = par ? paramName(par) : '';
  // Only write (own factory, the only one it sees) and admin tokens may acknowledge.
  const kind = S.site && S.site.scope ? S.site.scope.kind : 'anonymous';
  const canAck = (a.state === 'pending' || a.state === 'firing') && (kind === 'admin' || kind === 'write');
  const hist = [
    `${t('opened')} ${fmtTime(a.pending_ns)}`,
    a.firing_ns ? `${t('fired')} ${fmtTime(a.firing_ns)}` : '',
    a.ack ? `${t('acknowledged')} ${fmtTime(a.ack.at_ns)}` : '',
    a.resolved_ns ? `${t('resolved')} ${fmtTime(a.resolved_ns)}` : '',
  ].filter(Boolean).join(' · ');
  const value = a.value != null ? fmtValue(a.value, par, a.limit ? a.limit.unit : undefined) : '';
  return `<li class="alert sev-${esc(a.severity)}" data-alert-id="${a.id}" data-state="${esc(a.state)}" data-kind="${esc(a.kind)}" data-factory="${esc(a.factory)}">
  <div class="head"><strong>${esc(t(a.kind))}</strong>
    <span class="badge st-${esc(a.state)}">${esc(t(a.state))}</span>
    ${withFactory ? `<a href="#/factory/${encodeURIComponent(a.factory)}">${esc(fname)}</a>` : ''}
    <span>${esc(a.point)}${pname ? ' · ' + esc(pname) : ''}</span>
    ${value ? `<span class="value">${esc(value)}${a.limit ? ' (' + esc(limitText(a.limit)) + ')' : ''}</span>` : ''}
    <span class="muted">${t('since')} ${fmtTime(a.since_ns)}</span></div>
  <div class="summary" title="${esc(a.summary)}">${esc(summaryText(a, par, pname))}</div>
  ${a.ack ? `<div class="ackinfo">${t('acked_by')} ${esc(a.ack.by)} ${t('at')} ${fmtTime(a.ack.at_ns)}: “<span class="ack-comment">${esc(a.ack.comment)}</span>”</div>` : ''}
  <div class="history">${t('history')}: ${hist}</div>
  ${canAck ? `<details class="ackbox"><summary>${esc(t('acknowledge'))}…</summary><form class="ack" data-id="${a.id}"><textarea name="comment" aria-label="${esc(t('comment'))}" placeholder="${esc(t('comment'))}"></textarea><button type="submit">${esc(t('send'))}</button></form></details>` : ''}
</li>`;
}

// The board words every kind from the alert's fields, in both languages with Bangkok times
// and values at display precision (the server's own summary is the tooltip); in Thai the
// server's `summary_th` where it sends one.
function summaryText(a, par, pname) {
  if (S.lang === 'th' && a.summary_th) return a.summary_th;
  const th = S.lang === 'th';
  const v = a.value != null ? fmtValue(a.value, par, a.limit ? a.limit.unit : undefined) : '';
  const since = `${th ? 'ตั้งแต่' : 'since'} ${fmtTime(a.since_ns)}`;
  const who = pname || a.point;
  if (a.kind === 'exceedance' && a.limit && a.value != null) {
    const l = a.limit;
    const by = l.permit ? `${th ? 'ใบอนุญาต' : 'permit'} ${l.permit}` : `${l.standard || ''} ${th ? 'ข้อ' : 'clause'} ${l.clause || ''}`.trim();
    const below = l.min != null && a.value < l.min;
    const verb = th ? (below ? 'ต่ำกว่าเกณฑ์' : 'เกินค่ามาตรฐาน') : below ? 'is below the range' : 'exceeds';
    return `${pname} ${v} ${verb} ${limitText(l)} (${by}) (${t(l.averaging)}) ${since}`;
  }
  if (a.kind === 'no_data') return th ? `ไม่ได้รับข้อมูลจากจุด ${a.point} ${since}` : `No reading from ${a.point} ${since}`;
  if (a.kind === 'sensor_fault') return `${tf('sf_summary', { p: who, v })} ${since}`;
  if (a.kind === 'availability') return `${tf('av_summary', { p: who })} ${since}`;
  if (a.kind === 'deadline') return tf('dl_summary', { point: a.point });
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
    // Keyboard users keep their place: the acknowledged alert takes the focus.
    const li = document.querySelector(`[data-alert-id="${r.alert.id}"]`);
    if (li) { li.tabIndex = -1; li.focus(); }
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

// live: connected and up to date; reconnecting: the stream dropped and the browser retries;
// catching_up: connected again, missed alerts being fetched; offline: given up (retried).
function setLive(status) {
  S.live = status;
  const el = $('#live');
  el.className = `live ${status === 'live' ? 'on' : 'off'}`;
  el.dataset.status = status;
  el.dataset.i18n = `live_${status}`;
  el.dataset.lastEventId = S.lastEventId;
  el.textContent = t(el.dataset.i18n);
}

function connectEvents() {
  if (S.events) S.events.close();
  clearTimeout(S.reconnectTimer);
  const url = '/api/v1/events' + (S.token ? `?token=${encodeURIComponent(S.token)}` : '');
  const es = new EventSource(url);
  S.events = es;
  // The browser sends Last-Event-ID itself when it reconnects (events carry ids); the board
  // also fetches the open alerts, so nothing missed stays missed whatever the server replays.
  es.onopen = () => {
    setLive('catching_up');
    Promise.all([loadAlerts(), loadStatus()]).then(() => { render(); if (S.events === es) setLive('live'); }).catch(() => {});
  };
  es.onerror = () => {
    if (S.events !== es) return;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (an error status): try again on our own.
      setLive('offline');
      S.reconnectTimer = setTimeout(connectEvents, 3000);
    } else {
      setLive('reconnecting');
    }
  };
  const seen = (ev) => { if (ev.lastEventId) { S.lastEventId = ev.lastEventId; $('#live').dataset.lastEventId = ev.lastEventId; } };
  es.addEventListener('alert', (ev) => {
    seen(ev);
    const a = JSON.parse(ev.data);
    S.alerts.set(a.id, a);
    render();
    scheduleStatus();
  });
  es.addEventListener('revision', (ev) => { seen(ev); scheduleStatus(); });
  es.addEventListener('reload', (ev) => {
    seen(ev);
    setLive('catching_up');
    Promise.all([loadAlerts(), loadStatus()]).then(() => { render(); setLive('live'); }).catch(() => {});
  });
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

// How to find the focused element again after a re-render.
function focusSelector() {
  const el = document.activeElement;
  if (!el || el === document.body || !$('#main').contains(el)) return null;
  if (el.id) return `#${CSS.escape(el.id)}`;
  const alert = el.closest('[data-alert-id]');
  const inAlert = alert ? `[data-alert-id="${alert.dataset.alertId}"]` : '';
  if (el === alert) return inAlert;
  if (alert && el.matches('summary')) return `${inAlert} summary`;
  if (alert && el.matches('button')) return `${inAlert} form.ack button`;
  if (alert && el.matches('a')) return `${inAlert} a`;
  if (el.dataset.factory) return `#factories [data-factory="${CSS.escape(el.dataset.factory)}"]`;
  if (el.dataset.countState) return `[data-count-state="${el.dataset.countState}"]`;
  return null;
}

// Re-rendering must not lose a comment being typed into an acknowledgement form, nor the
// keyboard's place.
function keepForms(fn) {
  const kept = [...document.querySelectorAll('form.ack')].map((f) => ({ id: f.dataset.id, v: f.elements.comment.value, open: f.parentElement.open, focus: document.activeElement === f.elements.comment }));
  const focused = focusSelector();
  fn();
  for (const k of kept) {
    const f = document.querySelector(`form.ack[data-id="${k.id}"]`);
    if (!f) continue;
    f.elements.comment.value = k.v;
    f.parentElement.open = k.open;
    if (k.focus) f.elements.comment.focus();
  }
  const again = focused && !kept.some((k) => k.focus) && document.querySelector(focused);
  if (again) {
    if (again.matches('li')) again.tabIndex = -1;
    again.focus();
  }
}

let factoryToken = 0; // the factory page's data loads are async: only the newest one renders
let lastView = null;

function render() {
  document.documentElement.lang = S.lang;
  document.title = t('title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('#lang').textContent = S.lang === 'th' ? 'English' : 'ไทย';
  $('#lang').setAttribute('aria-label', t('lang_switch'));
  $('#be').checked = S.be;
  const r = route();
  for (const a of document.querySelectorAll('header nav a')) {
    const current = (a.getAttribute('href') === '#/indicators') === (r.view === 'indicators') && r.view !== 'factory';
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (!S.site) return;
  if (r.view !== 'factory') destroyCharts();
  if (r.view === 'factory') keepForms(() => renderFactoryFrame(r.arg));
  else if (r.view === 'indicators') renderIndicatorsOnce();
  else keepForms(renderOverview);
  // A new page: the keyboard starts at its heading.
  const key = `${r.view}/${r.arg}`;
  if (lastView !== null && lastView !== key) {
    const h1 = $('#main h1');
    if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: false }); }
  }
  lastView = key;
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
  <label>${esc(t('area'))} <select id="f-area">${options([['', t('all')], ...areas.map((a) => [a.id, `${areaName(a)} (${provinceName(a)})`])], F.area)}</select></label>
  <label>${esc(t('type'))} <select id="f-kind">${options([['', t('all')], ['effluent', t('effluent')], ['emission', t('emission')]], F.kind)}</select></label>
  <label>${esc(t('state'))} <select id="f-state">${options([['', t('all')], ...STATES.map((s) => [s, t(s)])], F.state)}</select></label>
</div>
<div class="filters" id="state-counts">${STATES.map((st) => `<button type="button" class="state s-${st}" data-count-state="${st}" data-count="${counts[st]}" aria-pressed="${F.state === st}">${esc(t(st))}: ${counts[st]}</button>`).join('')}</div>
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

const PRESETS = ['fit', 'h6', 'h24', 'd7', 'd30', 'custom'];

// The range asked for, ns. "Fit the data" looks over the last 30 days and then narrows to
// where the readings are (see loadCharts).
function rangeNs() {
  const now = Date.now();
  const spans = { h6: 6 * 3600e3, h24: 24 * 3600e3, d7: 7 * 86400e3, d30: 30 * 86400e3, fit: 30 * 86400e3 };
  if (S.range.preset === 'custom' && S.range.from && S.range.to) {
    return [S.range.from * 1e6, S.range.to * 1e6];
  }
  const span = spans[S.range.preset] || spans.fit;
  return [(now - span) * 1e6, (now + 60e3) * 1e6];
}

function destroyCharts() {
  for (const c of S.charts) c.destroy();
  S.charts = [];
}

function renderFactoryFrame(id) {
  const hit = findFactory(id);
  if (!hit) {
    $('#main').innerHTML = `<h1>${esc(t('unknown_factory'))}: ${esc(id)}</h1><p><a href="#/">${esc(t('back'))}</a></p>`;
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
  destroyCharts();
  $('#main').innerHTML = `<div id="factory-page" data-factory="${esc(f.id)}" data-lang="${S.lang}" data-be="${S.be}">
<p class="no-print"><a href="#/">← ${esc(t('back'))}</a></p>
<h1 data-view="factory">${esc(f.name)} <span id="factory-state" class="state s-${state}" data-state="${state}">${esc(t(state))}</span></h1>
<p class="muted">${esc(areaName(area))} (${esc(provinceName(area))}) · ${esc(t('category'))} ${esc(f.category)}${f.diw_registration ? ' · ' + esc(f.diw_registration) : ''}</p>
<form class="filters" id="r-form" novalidate>
  <label>${esc(t('range'))} <select id="r-preset">${options(PRESETS.map((k) => [k, t(k)]), S.range.preset)}</select></label>
  ${dateInput('r-from', t('from'), from / 1e6, true)}
  ${dateInput('r-to', t('to'), to / 1e6, true)}
  <button id="r-show" type="submit">${esc(t('show'))}</button>
</form>
<p class="error" id="r-error" role="alert" hidden></p>
<h2>${esc(t('alerts_of_factory'))}</h2>
<ul class="alerts" id="factory-alerts">${alertsHtml}</ul>
<div id="charts" aria-live="polite"><p class="muted">${esc(t('loading'))}</p></div>
</div>`;
  $('#r-preset').addEventListener('change', (ev) => { S.range.preset = ev.target.value; if (S.range.preset !== 'custom') { $('#factory-page').dataset.factory = ''; render(); } });
  $('#r-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const err = $('#r-error');
    try {
      const a = parseDateInput($('#r-from'), t('from'));
      const b = parseDateInput($('#r-to'), t('to'));
      if (b <= a) { $('#r-to').setAttribute('aria-invalid', 'true'); throw new InputError(t('range_order')); }
      err.hidden = true;
      S.range = { preset: 'custom', from: a, to: b };
      $('#factory-page').dataset.factory = '';
      render();
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      err.textContent = e.message;
      err.hidden = false;
    }
  });
  loadCharts(f, from, to);
}

const RAW_MAX = 20000; // single readings (with their quality) up to this many, else buckets

async function loadCharts(f, from, to) {
  const mine = ++factoryToken;
  const fq = `factory=${encodeURIComponent(f.id)}`;
  const fit = S.range.preset === 'fit';
  try {
    let lo = from;
    if (fit) {
      // Where is the data? Hourly buckets over the whole window; the range starts at the first.
      const coarse = await api(`/api/v1/readings?${fq}&from_ns=${Math.floor(from)}&to_ns=${Math.ceil(to)}&every_s=3600`);
      const starts = coarse.series.filter((s) => s.buckets.length).map((s) => s.buckets[0].start_ns);
      if (starts.length) lo = Math.max(from, Math.min(...starts));
      if (mine !== factoryToken) return;
    }
    const q = `${fq}&from_ns=${Math.floor(lo)}&to_ns=${Math.ceil(to)}`;
    const span_s = (to - lo) / 1e9;
    let readings = null;
    if (span_s <= 3 * 86400) {
      const raw = await api(`/api/v1/readings?${q}&limit=${RAW_MAX}`);
      if (!raw.next_cursor) readings = { raw: true, rows: raw.readings };
    }
    const every_s = Math.max(1, Math.ceil(span_s / 600));
    const [buckets, periods, episodes, avail, status] = await Promise.all([
      readings ? null : api(`/api/v1/readings?${q}&every_s=${every_s}`),
      api(`/api/v1/periods?${q}&max_rows=20000`),
      api(`/api/v1/episodes?${q}`),
      api(`/api/v1/availability?${q}`),
      api(`/api/v1/status?factory=${encodeURIComponent(f.id)}`),
    ]);
    if (mine !== factoryToken || !$('#charts')) return;
    destroyCharts();
    const specs = [];
    for (const p of f.points) {
      for (const par of p.parameters) {
        const match = (x) => x.point === p.id && x.parameter === par.code;
        const st = status.series.find(match);
        const series = buckets ? buckets.series.find(match) : null;
        specs.push({
          point: p, param: par, from: lo, to, fit, every_s,
          raw: readings ? readings.rows.filter(match) : null,
          buckets: series ? series.buckets : [],
          periods: periods.periods.filter(match),
          episodes: episodes.episodes.filter(match),
          limits: st ? st.judgements.map((j) => ({ ...j.limit, applied_max: j.applied_max })) : [],
          days: avail.days.filter(match),
        });
      }
    }
    $('#charts').innerHTML = specs.map(chartFrameHtml).join('');
    specs.forEach((c, i) => {
      const el = document.querySelectorAll('#charts section.chart')[i];
      S.charts.push(makeChart(el, c));
    });
    // Fitted: the inputs show the range the charts show.
    const shown = [...document.querySelectorAll('#charts section.chart')].map((el) => el.chart).filter(Boolean);
    if (fit && shown.length && $('#r-from')) {
      $('#r-from').value = fmtTime(Math.min(...shown.map((x) => x.x0)) * 1e9);
      $('#r-to').value = fmtTime(Math.max(...shown.map((x) => x.x1)) * 1e9);
    }
  } catch (e) {
    if (mine === factoryToken && $('#charts')) $('#charts').innerHTML = `<p class="error">${esc(e.message)}</p>`;
  }
}

const OUTCOME_KEY = { compliant: 'p_compliant', exceeds: 'p_exceeds', insufficient_data: 'p_insufficient', cannot_correct: 'p_cannot', mixed: 'p_mixed' };
const BAND_FILL = { compliant: 'rgba(46,125,50,0.16)', exceeds: 'rgba(198,40,40,0.22)', insufficient_data: 'rgba(97,97,97,0.18)', cannot_correct: 'rgba(239,108,0,0.2)' };

// The judged periods of a chart as bands. A period that is not itself exceeding but holds
// exceeding periods or grab samples (an hour's compliant grab samples summarised in one
// entry beside the exceeding ones) is "mixed", with its counts: its colour never says
// compliant over an exceedance.
function classifyPeriods(periods) {
  const instants = periods.filter((p) => p.end_ns === p.start_ns);
  const spans = periods.filter((p) => p.end_ns > p.start_ns);
  const exceeding = periods.filter((p) => p.outcome === 'exceeds');
  const bands = spans.map((p) => {
    const inside = exceeding.filter((x) => x !== p && x.start_ns >= p.start_ns && x.start_ns < p.end_ns);
    const exceedingSamples = inside.reduce((n, x) => n + (x.samples || 1), 0);
    const cls = p.outcome !== 'exceeds' && inside.length ? 'mixed' : p.outcome;
    const compliantSamples = p.outcome === 'compliant' ? (p.samples || 1) : 0;
    return { p, cls, exceedingSamples, compliantSamples, lane: p.limit ? p.limit.id : '' };
  });
  // Longer periods first, so shorter ones (drawn later) stay visible over them.
  bands.sort((a, b) => (b.p.end_ns - b.p.start_ns) - (a.p.end_ns - a.p.start_ns) || a.p.start_ns - b.p.start_ns);
  return { bands, grabs: instants.filter((p) => p.value != null) };
}

function appliedBounds(l) {
  const max = l.applied_max != null ? l.applied_max : l.max;
  const min = l.applied_min != null ? l.applied_min : l.min;
  return [max, min].filter((v) => v != null);
}

function chartFrameHtml(c) {
  const unit = unitOf(c.param);
  const { bands, grabs } = classifyPeriods(c.periods);
  c.bands = bands; c.grabs = grabs;
  const dec = decimalsOf(c.param);
  const limits = c.limits.map((l) => {
    const basis = l.reference_o2_pct != null ? ` ${t('at_o2')} ${fmtNum(l.reference_o2_pct, 0)} % O₂` : '';
    return `${limitText(l)}${basis} (${t(l.averaging)})`;
  });
  const nReadings = c.raw ? c.raw.length : c.buckets.reduce((n, b) => n + b.count, 0);
  const mixed = bands.filter((b) => b.cls === 'mixed').length;
  const label = `${paramName(c.param)}: ${nReadings} ${t('readings_n')}; ${t('limit')} ${limits.join(', ') || '–'}; ${grabs.filter((g) => g.outcome === 'exceeds').length} × ${t('grab_exceeds')}${mixed ? `; ${mixed} × ${t('p_mixed')}` : ''}`;
  const rows = [
    ...bands.map((b) => `<tr data-band="${esc(b.cls)}" data-start-ns="${b.p.start_ns}"><td>${fmtTime(b.p.start_ns)}</td><td>${fmtTime(b.p.end_ns)}</td><td><i class="key-${esc(b.cls)}"></i> ${esc(t(OUTCOME_KEY[b.cls] || 'p_insufficient'))} (${esc(t(b.p.limit.averaging))})</td><td>${b.p.value != null ? esc(fmtValue(b.p.value, c.param, b.p.limit.unit)) : '–'}</td><td>${b.p.limit.averaging === 'instantaneous' || b.exceedingSamples ? `${b.compliantSamples} ${esc(t('n_compliant'))} · <strong>${b.exceedingSamples} ${esc(t('n_exceeding'))}</strong>` : ''}${b.p.reason ? ' ' + esc(b.p.reason) : ''}</td></tr>`),
    ...grabs.map((g) => `<tr data-grab="${esc(g.outcome)}"><td>${fmtTime(g.start_ns, 'seconds')}</td><td></td><td><i class="key-grab"></i> ${esc(t(g.outcome === 'exceeds' ? 'grab_exceeds' : OUTCOME_KEY[g.outcome] || 'p_insufficient'))}</td><td>${esc(fmtValue(g.value, c.param, g.limit.unit))}</td><td></td></tr>`),
    ...c.episodes.map((e) => `<tr data-episode="1"><td>${fmtTime(e.start_ns)}</td><td>${fmtTime(e.end_ns)}</td><td><i class="key-episode"></i> ${esc(t('episode'))} (${e.periods} × ${esc(t(e.limit.averaging))})</td><td>${esc(t('peak'))} ${esc(fmtValue(e.peak, c.param, e.limit.unit))}</td><td></td></tr>`),
  ];
  const days = c.days.map((d) => `<span class="${d.meets === false ? 'short' : d.meets ? 'meets' : ''}" title="${d.valid}/${d.expected}">${esc(fmtTime(d.day_start_ns, 'date'))}: ${fmtNum(d.availability_pct, 1)} %</span>`).join('');
  return `<section class="chart" data-point="${esc(c.point.id)}" data-parameter="${esc(c.param.code)}" data-decimals="${dec}" data-limits="${esc(c.limits.flatMap(appliedBounds).join(' '))}" data-mixed="${mixed}">
<div class="title"><h3>${esc(paramName(c.param))}</h3><span class="muted">${esc(c.point.id)} · ${esc(t(c.point.kind))}${unit ? ' · ' + esc(unit) : ''}</span>
<span class="zoom no-print"><button type="button" data-zoom="left" aria-label="${esc(t('pan_left'))}" title="${esc(t('pan_left'))}">◀</button><button type="button" data-zoom="right" aria-label="${esc(t('pan_right'))}" title="${esc(t('pan_right'))}">▶</button><button type="button" data-zoom="out" aria-label="${esc(t('zoom_out'))}" title="${esc(t('zoom_out'))}">−</button><button type="button" data-zoom="reset">${esc(t('zoom_reset'))}</button></span></div>
<div class="plot" role="img" aria-label="${esc(label)}"></div>
<div class="tip" hidden></div>
${nReadings ? '' : `<p class="muted">${esc(t('no_readings'))}</p>`}
<div class="legend"><span><i class="key-reading"></i>${esc(t('reading'))}</span>${c.raw ? '' : `<span><i class="key-band"></i>${esc(t('reading_band'))}</span>`}<span><i class="key-limit"></i>${esc(t('limit'))}</span>
<span><i class="key-compliant"></i>${esc(t('p_compliant'))}</span><span><i class="key-exceeds"></i>${esc(t('p_exceeds'))}</span><span><i class="key-mixed"></i>${esc(t('p_mixed'))}</span>
<span><i class="key-insufficient_data"></i>${esc(t('p_insufficient'))}</span><span><i class="key-grab"></i>${esc(t('grab_exceeds'))}</span><span><i class="key-episode"></i>${esc(t('episode'))}</span></div>
<p class="muted small no-print">${esc(t('chart_help'))}</p>
<details class="periods"><summary>${esc(t('periods_table'))} (${rows.length})</summary>
<table><thead><tr><th scope="col">${esc(t('start'))}</th><th scope="col">${esc(t('end'))}</th><th scope="col">${esc(t('what'))}</th><th scope="col">${esc(t('value'))}</th><th scope="col">${esc(t('counts'))}</th></tr></thead><tbody>${rows.join('')}</tbody></table></details>
<div class="avail"><strong>${esc(t('daily_availability'))}:</strong> ${days || '–'}</div>
</section>`;
}

let hatch = null;
// Red diagonal stripes: the fill of a mixed period.
function hatchPattern(ctx) {
  if (hatch) return ctx.createPattern(hatch, 'repeat');
  hatch = document.createElement('canvas');
  hatch.width = hatch.height = 10;
  const h = hatch.getContext('2d');
  h.fillStyle = 'rgba(198,40,40,0.10)';
  h.fillRect(0, 0, 10, 10);
  h.strokeStyle = 'rgba(198,40,40,0.75)';
  h.lineWidth = 2.5;
  h.beginPath(); h.moveTo(-2, 12); h.lineTo(12, -2); h.moveTo(-2, 2); h.lineTo(2, -2); h.moveTo(8, 12); h.lineTo(12, 8); h.stroke();
  return ctx.createPattern(hatch, 'repeat');
}

// One chart: uPlot with the readings (raw with their quality, or buckets with min–max), the
// exceeding grab samples as rings, the judged periods as bands under the data, the applied
// limits as dashed lines and the episodes as bars along the top.
function makeChart(el, c) {
  const plotEl = $('.plot', el);
  const tip = $('.tip', el);
  const dec = decimalsOf(c.param);
  const sec = (ns) => ns / 1e9;
  // Readings, with null where data is missing (uPlot breaks the line at null).
  const xs = [], ys = [], mins = [], maxs = [], qual = [], counts = [];
  if (c.raw) {
    const gap_s = Math.max(2.5 * (c.point.expected_interval_s || 60), 1);
    c.raw.forEach((r, i) => {
      if (i > 0 && sec(r.time_ns - c.raw[i - 1].time_ns) > gap_s) { xs.push(sec(r.time_ns) - gap_s / 2); ys.push(null); qual.push(null); }
      xs.push(sec(r.time_ns)); ys.push(r.value); qual.push(r.quality);
    });
  } else {
    const step = c.every_s;
    c.buckets.forEach((b, i) => {
      const x = sec(b.start_ns) + step / 2;
      if (i > 0 && sec(b.start_ns - c.buckets[i - 1].start_ns) > 1.5 * step) { xs.push(x - step / 2); ys.push(null); mins.push(null); maxs.push(null); counts.push(null); }
      xs.push(x); ys.push(b.mean); mins.push(b.min); maxs.push(b.max); counts.push(b.count);
    });
  }
  const gx = c.grabs.map((g) => sec(g.start_ns));
  const gy = c.grabs.map((g) => g.value);
  const tables = c.raw ? [[xs, ys]] : [[xs, ys, mins, maxs]];
  if (gx.length) tables.push([gx, gy]);
  const data = tables.length > 1 ? uPlot.join(tables) : tables[0];
  if (!data[0].length) { data[0].push(sec(c.from)); for (let i = 1; i < data.length; i++) data[i].push(null); }
  const bounds = c.limits.flatMap(appliedBounds);
  // Points: every reading when there are few; otherwise only those with no neighbour (a
  // lone reading would be an invisible one-point line).
  const lone = (u, si) => {
    if (c.raw && c.raw.length < 150) return null;
    const d = u.data[si], out = [];
    const near = (i, step) => { for (let j = i + step; j >= 0 && j < d.length; j += step) if (d[j] !== undefined) return d[j]; return null; };
    for (let i = 0; i < d.length; i++) if (d[i] != null && near(i, -1) == null && near(i, 1) == null) out.push(i);
    return out;
  };
  const series = [{}, { label: t('reading'), stroke: '#1565c0', width: 1.6, spanGaps: false, points: { show: true, size: 6, fill: '#1565c0', filter: lone } }];
  const bandsOpt = [];
  if (!c.raw) {
    series.push({ label: 'min', stroke: 'rgba(21,101,192,0.35)', width: 0.5 }, { label: 'max', stroke: 'rgba(21,101,192,0.35)', width: 0.5 });
    bandsOpt.push({ series: [3, 2], fill: 'rgba(21,101,192,0.15)' });
  }
  const grabIdx = gx.length ? series.length : -1;
  if (gx.length) series.push({ label: t('grab_exceeds'), stroke: '#b71c1c', width: 0, paths: () => null, points: { show: true, size: 11, width: 2.5, stroke: '#b71c1c', fill: '#ffffff' } });
  // The x range: what was asked for, or (fit) the data with a margin.
  let x0 = sec(c.from), x1 = sec(c.to);
  if (c.fit) {
    const all = [...xs.filter((_, i) => ys[i] != null), ...gx];
    if (all.length) {
      const lo = Math.min(...all), hi = Math.max(...all, Date.now() / 1000);
      const pad = Math.max(300, (hi - lo) * 0.04);
      x0 = lo - pad; x1 = hi + pad;
    }
  }
  // Clock times; the day where it changes (alone at midnight), so no label repeats.
  const ticks = (u, splits) => splits.map((v, i) => {
    const ns = v * 1e9;
    const day = fmtTime(ns, 'daymonth'), time = fmtTime(ns, 'time');
    const newDay = i === 0 || fmtTime(splits[i - 1] * 1e9, 'daymonth') !== day;
    if (!newDay) return time;
    return time === '00:00' ? day : `${day}\n${time}`;
  });
  const drawBands = (u) => {
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    const lanes = [...new Set(c.bands.map((b) => b.lane))];
    const laneH = height / Math.max(1, lanes.length);
    ctx.save();
    for (const b of c.bands) {
      const a = u.valToPos(sec(b.p.start_ns), 'x', true), z = u.valToPos(sec(b.p.end_ns), 'x', true);
      const left = Math.max(a, u.bbox.left), right = Math.min(z, u.bbox.left + u.bbox.width);
      if (right <= left) continue;
      const y = top + lanes.indexOf(b.lane) * laneH;
      ctx.fillStyle = b.cls === 'mixed' ? hatchPattern(ctx) : BAND_FILL[b.cls] || BAND_FILL.insufficient_data;
      ctx.fillRect(left, y, Math.max(1, right - left), laneH);
      if (b.cls === 'mixed' && right - left > 60 * devicePixelRatio) {
        ctx.fillStyle = '#8e0000';
        ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
        ctx.fillText(`${b.exceedingSamples} ✕ · ${b.compliantSamples} ✓`, left + 3 * devicePixelRatio, y + 13 * devicePixelRatio);
      }
    }
    ctx.restore();
  };
  const drawMarks = (u) => {
    const ctx = u.ctx;
    const { left, top, width } = u.bbox;
    ctx.save();
    ctx.strokeStyle = '#c62828';
    ctx.fillStyle = '#c62828';
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
    ctx.textAlign = 'right';
    for (const l of c.limits) {
      appliedBounds(l).forEach((v, i) => {
        const y = u.valToPos(v, 'y', true);
        ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
        if (i === 0) {
          // On a white ground, so a hatched band under it does not garble it.
          const basis = l.reference_o2_pct != null ? ` ${t('at_o2')} ${fmtNum(l.reference_o2_pct, 0)} % O₂` : '';
          const text = `${t('limit')} ${limitText(l)}${basis} (${t(l.averaging)})`;
          const w = ctx.measureText(text).width, pad = 3 * devicePixelRatio;
          ctx.fillStyle = 'rgba(255,255,255,0.9)';
          ctx.fillRect(left + width - 4 - w - pad, y - 17 * devicePixelRatio, w + 2 * pad, 14 * devicePixelRatio);
          ctx.fillStyle = '#b71c1c';
          ctx.fillText(text, left + width - 4, y - 6 * devicePixelRatio);
        }
      });
    }
    ctx.setLineDash([]);
    ctx.fillStyle = '#8e0000';
    for (const e of c.episodes) {
      const a = Math.max(left, u.valToPos(sec(e.start_ns), 'x', true));
      const z = Math.min(left + width, Math.max(a + 4 * devicePixelRatio, u.valToPos(sec(e.end_ns), 'x', true)));
      if (z > a) ctx.fillRect(a, top, z - a, 5 * devicePixelRatio);
    }
    ctx.restore();
  };
  const showTip = (u) => {
    const i = u.cursor.idx;
    if (i == null || u.cursor.left < 0) { tip.hidden = true; return; }
    const x = u.data[0][i];
    const lines = [`<strong>${esc(fmtTime(x * 1e9, c.raw ? 'seconds' : undefined))}</strong>`];
    const y = u.data[1][i];
    if (y != null) {
      if (c.raw) {
        const q = qual[xs.indexOf(x)];
        lines.push(`${esc(t('reading'))}: ${esc(fmtValue(y, c.param))} · ${esc(t('quality'))}: ${esc(t(q || 'valid'))}`);
      } else {
        const j = xs.indexOf(x);
        lines.push(`${esc(t('mean'))}: ${esc(fmtValue(y, c.param))} (${esc(fmtNum(mins[j], dec))}–${esc(fmtNum(maxs[j], dec))}, ${counts[j]} ${esc(t('readings_n'))})`);
      }
    }
    if (grabIdx > 0 && u.data[grabIdx][i] != null) lines.push(`<span class="bad">${esc(t('grab_exceeds'))}: ${esc(fmtValue(u.data[grabIdx][i], c.param))}</span>`);
    for (const b of c.bands) {
      if (x * 1e9 < b.p.start_ns || x * 1e9 >= b.p.end_ns) continue;
      const counts_ = b.p.limit.averaging === 'instantaneous' || b.exceedingSamples ? ` — ${b.compliantSamples} ${t('n_compliant')}, ${b.exceedingSamples} ${t('n_exceeding')}` : '';
      lines.push(`${esc(t(OUTCOME_KEY[b.cls] || 'p_insufficient'))} ${esc(fmtTime(b.p.start_ns, 'time'))}–${esc(fmtTime(b.p.end_ns, 'time'))}${b.p.value != null ? ': ' + esc(fmtValue(b.p.value, c.param, b.p.limit.unit)) : ''}${esc(counts_)}`);
    }
    tip.innerHTML = lines.join('<br>');
    tip.hidden = false;
    const px = u.bbox.left / devicePixelRatio + u.cursor.left;
    tip.style.left = `${Math.min(px + 12, plotEl.clientWidth - 260)}px`;
    tip.style.top = `${u.bbox.top / devicePixelRatio + 8}px`;
  };
  const opts = {
    width: Math.max(280, plotEl.clientWidth || 600),
    height: 260,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Asia/Bangkok'),
    legend: { show: false },
    cursor: { drag: { x: true, y: false }, points: { size: 7 } },
    scales: {
      x: { time: true, min: x0, max: x1 },
      y: {
        range: (u, dmin, dmax) => {
          const vals = [dmin, dmax, ...bounds, 0].filter((v) => v != null && Number.isFinite(v));
          return uPlot.rangeNum(Math.min(...vals), Math.max(...vals, Math.min(...vals) + 1e-9), 0.1, true);
        },
      },
    },
    axes: [
      { values: ticks, stroke: '#3d4451', grid: { stroke: 'rgba(0,0,0,0.06)' } },
      { values: (u, splits, ai, space, incr) => splits.map((v) => fmtNum(v, decimalsForStep(incr))), stroke: '#3d4451', size: 62, grid: { stroke: 'rgba(0,0,0,0.06)' } },
    ],
    series,
    bands: bandsOpt,
    hooks: { drawClear: [drawBands], draw: [drawMarks], setCursor: [showTip] },
  };
  const u = new uPlot(opts, data, plotEl);
  el.uplot = u; // for the browser tests
  el.chart = { x0, x1, bands: c.bands };
  const zoom = (kind) => {
    const { min, max } = u.scales.x;
    const w = max - min;
    if (kind === 'left') u.setScale('x', { min: min - w / 2, max: max - w / 2 });
    if (kind === 'right') u.setScale('x', { min: min + w / 2, max: max + w / 2 });
    if (kind === 'out') u.setScale('x', { min: min - w / 2, max: max + w / 2 });
    if (kind === 'reset') u.setScale('x', { min: x0, max: x1 });
  };
  for (const b of el.querySelectorAll('[data-zoom]')) b.addEventListener('click', () => zoom(b.dataset.zoom));
  plotEl.addEventListener('mouseleave', () => { tip.hidden = true; });
  return u;
}

window.addEventListener('resize', () => {
  for (const u of S.charts) {
    const w = u.root.parentElement.clientWidth;
    if (w && Math.abs(w - u.width) > 4) u.setSize({ width: w, height: u.height });
  }
});
// ---- indicators: a report for the assessment committee ----

// Bangkok calendar "now": year, month (0-based).
function bkkNow() { const d = new Date(Date.now() + BKK_OFFSET_MS); return { y: d.getUTCFullYear(), m: d.getUTCMonth(), day: d.toISOString().slice(0, 10) }; }
const eraYear = (y) => y + (S.be ? 543 : 0);

// The periods the picker offers, newest first, as [value, label] (values as the API takes them).
function periodChoices(kind) {
  const { y, m } = bkkNow();
  const out = [];
  if (kind === 'month') {
    for (let i = 0; i < 24; i++) {
      const mm = ((m - i) % 12 + 12) % 12, yy = y + Math.floor((m - i) / 12);
      out.push([`${yy}-${String(mm + 1).padStart(2, '0')}`, `${MONTHS[S.lang][mm]} ${eraYear(yy)}`]);
    }
  } else if (kind === 'quarter') {
    const q = Math.floor(m / 3);
    for (let i = 0; i < 8; i++) {
      const qq = ((q - i) % 4 + 4) % 4, yy = y + Math.floor((q - i) / 4);
      out.push([`${yy}-Q${qq + 1}`, `${t('quarter_n')} ${qq + 1}/${eraYear(yy)}`]);
    }
  } else if (kind === 'fy') {
    // The Thai fiscal year runs 1 October – 30 September and is named by the year it ends in.
    const fy = m >= 9 ? y + 1 : y;
    for (let i = 0; i < 4; i++) {
      const f = fy - i;
      out.push([`FY${f}`, `${t('fy_n')} ${eraYear(f)} (01/10/${eraYear(f - 1)} – 30/09/${eraYear(f)})`]);
    }
  }
  return out;
}

// The `n` periods before `which` (oldest first), for the trend.
function periodsBefore(kind, which, n) {
  const out = [];
  for (let i = n; i >= 1; i--) {
    if (kind === 'month') {
      const [yy, mm] = which.split('-').map(Number);
      const k = yy * 12 + (mm - 1) - i;
      out.push(`${Math.floor(k / 12)}-${String((k % 12) + 1).padStart(2, '0')}`);
    } else if (kind === 'quarter') {
      const [yy, qs] = which.split('-Q');
      const k = Number(yy) * 4 + (Number(qs) - 1) - i;
      out.push(`${Math.floor(k / 4)}-Q${(k % 4) + 1}`);
    } else if (kind === 'fy') {
      out.push(`FY${Number(which.slice(2)) - i}`);
    }
  }
  return out;
}

const TREND_N = { month: 5, quarter: 3, fy: 2 };
const COUNTED = { 'grab samples/periods': 'c_grab_periods', 'point-days': 'c_point_days', hours: 'c_hours', factories: 'c_factories' };

function fmtIndicator(v, unit) {
  if (v == null) return '–';
  if (unit === '%') return `${fmtNum(v, 1)} %`;
  if (unit === 'count') return fmtNum(v, 0);
  if (unit === 'h') return `${fmtNum(v, 0)} ${t('u_h')}`;
  if (unit === 'kg') return `${fmtNum(v, 1)} ${t('u_kg')}`;
  if (unit === 't') return `${fmtNum(v, 3)} ${t('u_t')}`;
  return `${fmtNum(v, 2)} ${unit || ''}`.trim();
}
function fmtChange(v, unit) {
  if (v == null) return '–';
  const sign = v > 0 ? '+' : v < 0 ? '−' : '±';
  const abs = Math.abs(v);
  if (unit === '%') return `${sign}${fmtNum(abs, 1)} ${t('pp')}`;
  return `${sign}${fmtIndicator(abs, unit)}`;
}

// A small trend: the values of the periods before and this one, as a line.
function sparkline(values, unit) {
  const pts = values.map((v, i) => [i, v]).filter(([, v]) => v != null);
  const label = values.map((v) => fmtIndicator(v, unit)).join(' → ');
  if (pts.length < 2) return `<span class="muted" title="${esc(label)}">–</span>`;
  const W = 90, H = 24, n = values.length - 1;
  const lo = Math.min(...pts.map(([, v]) => v)), hi = Math.max(...pts.map(([, v]) => v));
  const x = (i) => 2 + (i / n) * (W - 4);
  const y = (v) => (hi === lo ? H / 2 : H - 3 - ((v - lo) / (hi - lo)) * (H - 6));
  const d = pts.map(([i, v], k) => `${k ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('');
  const [li, lv] = pts[pts.length - 1];
  return `<svg class="spark" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(`${t('trend')}: ${label}`)}"><path d="${d}" fill="none" stroke="#17324d" stroke-width="1.5"/><circle cx="${x(li).toFixed(1)}" cy="${y(lv).toFixed(1)}" r="2.5" fill="#17324d"/></svg>`;
}

function rangeText(r) {
  if (!r) return '';
  return `${fmtTime(r.from_ns, 'date')} – ${fmtTime(r.to_ns - 1, 'date')}`;
}

// A server-made label with the catalog's names for parameter codes and factory names for
// `factory/point` ids.
function humanise(text) {
  const known = new Set(factories().flatMap(({ f }) => f.points.flatMap((p) => p.parameters.map((x) => x.code))));
  return String(text || '')
    .replace(/\b([\w-]+)\/([\w-]+)\b/g, (m, f, p) => (findFactory(f) ? `${factoryName(f)} / ${p}` : m))
    .replace(/\b([a-z][a-z0-9_]*)\b/g, (m) => (known.has(m) && m !== 'as' ? paramName(anyParam(m)) : m)); // "as": a word too
}

function reportHtml(doc, areaLabel, periodLabel) {
  const r = doc.report;
  const name = (x) => humanise(S.lang === 'th' ? x.name_th || x.name_en : x.name_en);
  const sections = r.indicators.map((ind) => {
    const rows = ind.values.map((v, i) => `<tr data-key="${esc(v.key)}" class="${i === 0 ? 'overall' : 'part'}">
<th scope="row">${esc(name(v))}</th>
<td class="num" data-value="${v.value == null ? '' : v.value}">${v.value == null ? `<span class="muted why">${esc(t('not_computed'))}: ${esc(humanise(S.lang === 'th' && v.not_computed_th ? v.not_computed_th : v.not_computed))}</span>` : esc(fmtIndicator(v.value, v.unit))}${v.numerator != null && v.denominator != null ? ` <span class="muted">(${fmtNum(v.numerator, 0)}/${fmtNum(v.denominator, 0)})</span>` : ''}</td>
<td class="num">${esc(fmtIndicator(v.previous, v.unit))}</td>
<td class="num">${esc(fmtChange(v.change, v.unit))}</td>
<td class="trend" data-trend-key="${esc(ind.id)}/${esc(v.key)}">${sparkline([v.previous, v.value], v.unit)}</td></tr>`).join('');
    const ev = ind.evidence.map((e) => {
      const par = e.parameter ? paramName(anyParam(e.parameter)) : '';
      return `<tr><td>${esc(factoryName(e.factory))}</td><td>${esc(e.point || '')}</td><td>${esc(par)}</td><td>${esc(COUNTED[e.counted] ? t(COUNTED[e.counted]) : e.counted)}</td><td class="num">${fmtNum(e.used, 0)}</td><td class="num">${fmtNum(e.excluded, 0)}</td><td>${esc(humanise(S.lang === 'th' && e.note_th ? e.note_th : e.note))}</td></tr>`;
    }).join('');
    return `<section class="indicator" data-indicator="${esc(ind.id)}">
<h3>${esc(name(ind))}${ind.eit_code ? ` <span class="muted">(${esc(ind.eit_code)})</span>` : ''}</h3>
<table class="values"><thead><tr><th scope="col">${esc(t('indicator'))}</th><th scope="col">${esc(t('current'))}</th><th scope="col">${esc(t('previous'))}</th><th scope="col">${esc(t('change'))}</th><th scope="col">${esc(t('trend'))}</th></tr></thead><tbody>${rows}</tbody></table>
<details class="evidence"><summary>${esc(t('evidence'))} (${ind.evidence.length})</summary>
<table><thead><tr><th scope="col">${esc(t('factory'))}</th><th scope="col">${esc(t('point'))}</th><th scope="col">${esc(t('parameter'))}</th><th scope="col">${esc(t('counted'))}</th><th scope="col">${esc(t('used'))}</th><th scope="col">${esc(t('excluded'))}</th><th scope="col">${esc(t('note'))}</th></tr></thead><tbody>${ev}</tbody></table></details>
</section>`;
  }).join('');
  const eps = r.episodes.map((e) => {
    const par = findParam(e.factory, e.point, e.parameter);
    return `<tr><td>${esc(factoryName(e.factory))}</td><td>${esc(e.point)}</td><td>${esc(paramName(par))}</td><td>${fmtTime(e.start_ns)}</td><td>${fmtTime(e.end_ns)}${e.ongoing ? ` <span class="badge st-firing">${esc(t('ongoing'))}</span>` : ''}</td><td class="num">${e.periods} × ${esc(t(e.limit.averaging))}</td><td class="num">${esc(fmtValue(e.peak, par, e.limit.unit))}</td><td>${esc(limitText(e.limit))}</td></tr>`;
  }).join('');
  return `<article id="report" data-period="${esc(r.period.label)}">
<h2 class="report-title">${esc(t('report_for'))} — ${esc(areaLabel)} — ${esc(periodLabel)}</h2>
<p class="muted">${esc(rangeText(r.period))} · ${esc(t('compared_with'))} ${esc(rangeText(r.previous))} · ${esc(t('generated'))} ${fmtTime(r.generated_ns)}</p>
${sections}
<section class="episodes"><h3>${esc(t('episodes'))} (${r.episodes.length})</h3>
${r.episodes.length ? `<div class="table-scroll"><table><thead><tr><th scope="col">${esc(t('factory'))}</th><th scope="col">${esc(t('point'))}</th><th scope="col">${esc(t('parameter'))}</th><th scope="col">${esc(t('start'))}</th><th scope="col">${esc(t('end'))}</th><th scope="col">${esc(t('periods_n'))}</th><th scope="col">${esc(t('peak'))}</th><th scope="col">${esc(t('limit'))}</th></tr></thead><tbody>${eps}</tbody></table></div>` : `<p class="muted">${esc(t('no_episodes'))}</p>`}
</section></article>`;
}

// The picked report; `shown` counts the loads, so only the newest one renders.
const IND = { area: null, kind: 'month', which: null, from: null, to: null, shown: 0 };

function renderIndicatorsOnce() {
  // Live events re-render the page: the report is redrawn only when the language or the
  // era changes, not at every alert.
  const page = $('#ind-page');
  if (page && page.dataset.key === `${S.lang}/${S.be}`) return;
  const areas = S.site.areas;
  if (IND.area == null) IND.area = areas[0] ? areas[0].id : '';
  const choices = periodChoices(IND.kind);
  if (IND.kind !== 'custom' && !choices.some(([v]) => v === IND.which)) IND.which = choices[0] ? choices[0][0] : null;
  if (IND.from == null) { IND.to = Date.now(); IND.from = IND.to - 30 * 86400e3; }
  $('#main').innerHTML = `<div id="ind-page" data-key="${S.lang}/${S.be}"><h1 data-view="indicators">${esc(t('indicators'))}</h1>
<form class="filters no-print" id="ind-form" novalidate>
  <label>${esc(t('area'))} <select id="ind-area">${options(areas.map((a) => [a.id, `${areaName(a)} (${provinceName(a)})`]), IND.area)}</select></label>
  <label>${esc(t('period_kind'))} <select id="ind-kind">${options([['month', t('month')], ['quarter', t('quarter')], ['fy', t('fy')], ['custom', t('custom')]], IND.kind)}</select></label>
  ${IND.kind === 'custom'
    ? `${dateInput('ind-from', t('from'), IND.from, false)} ${dateInput('ind-to', t('to'), IND.to, false)}`
    : `<label>${esc(t('which'))} <select id="ind-which">${options(choices, IND.which)}</select></label>`}
  <button id="ind-show" type="submit">${esc(t('show'))}</button>
  <button id="ind-csv" type="button">${esc(t('export_csv'))}</button>
  <button id="ind-xlsx" type="button">${esc(t('export_xlsx'))}</button>
  <button id="ind-print" type="button">${esc(t('print'))}</button>
</form>
<p class="error" id="ind-error" role="alert" hidden></p>
<p class="muted no-print small" id="ind-url"></p>
<div id="ind-out" aria-live="polite"></div></div>`;
  // The query of the picked period; custom days are Bangkok days, `to` is the day after the last.
  const periodQuery = () => {
    if (IND.kind !== 'custom') return `period=${encodeURIComponent(IND.which)}`;
    const day = (ms) => new Date(ms + BKK_OFFSET_MS).toISOString().slice(0, 10);
    return `from=${day(IND.from)}&to=${day(IND.to + 86400e3)}`;
  };
  const query = (format, period) => {
    const q = `/api/v1/indicators?area=${encodeURIComponent(IND.area)}&${period || periodQuery()}`;
    // B.E. dates in the files when the board shows them.
    return format ? `${q}&format=${format}${S.be ? '&be=true' : ''}` : q;
  };
  const read = () => {
    IND.area = $('#ind-area').value;
    if (IND.kind === 'custom') {
      const a = parseDateInput($('#ind-from'), t('from'));
      const b = parseDateInput($('#ind-to'), t('to'));
      if (b < a) { $('#ind-to').setAttribute('aria-invalid', 'true'); throw new InputError(t('range_order')); }
      IND.from = a; IND.to = b;
    } else {
      IND.which = $('#ind-which').value;
    }
  };
  const periodLabel = () => {
    if (IND.kind === 'custom') return `${fmtTime(IND.from * 1e6, 'date')} – ${fmtTime(IND.to * 1e6, 'date')}`;
    const hit = periodChoices(IND.kind).find(([v]) => v === IND.which);
    return hit ? hit[1] : IND.which;
  };
  const show = async () => {
    const err = $('#ind-error');
    try { read(); err.hidden = true; } catch (e) {
      if (!(e instanceof InputError)) throw e;
      err.textContent = e.message; err.hidden = false; return;
    }
    const mine = ++IND.shown;
    $('#ind-url').textContent = `GET ${query()}`;
    $('#ind-out').innerHTML = `<p class="muted">${esc(t('loading'))}</p>`;
    try {
      const doc = await api(query());
      if (mine !== IND.shown || !$('#ind-out')) return;
      const area = S.site.areas.find((a) => a.id === IND.area);
      $('#ind-out').innerHTML = reportHtml(doc, area ? `${areaName(area)} (${provinceName(area)})` : IND.area, periodLabel());
      fillTrends(doc, mine);
    } catch (e) {
      if (mine === IND.shown && $('#ind-out')) $('#ind-out').innerHTML = `<p class="error">${esc(t('indicators_missing'))}: ${esc(e.message)}</p>`;
    }
  };
  // The trend: the same report over the periods before, drawn when they arrive.
  const fillTrends = async (doc, mine) => {
    if (IND.kind === 'custom') return;
    const before = periodsBefore(IND.kind, IND.which, TREND_N[IND.kind]);
    const docs = await Promise.all(before.map((p) => api(query(null, `period=${encodeURIComponent(p)}`)).catch(() => null)));
    if (mine !== IND.shown) return;
    for (const ind of doc.report.indicators) {
      for (const v of ind.values) {
        const series = docs.map((d) => {
          const i = d && d.report.indicators.find((x) => x.id === ind.id);
          const w = i && i.values.find((x) => x.key === v.key);
          return w ? w.value : null;
        });
        series.push(v.value);
        const cell = document.querySelector(`#report td[data-trend-key="${CSS.escape(`${ind.id}/${v.key}`)}"]`);
        if (cell) { cell.innerHTML = sparkline(series, v.unit); cell.dataset.points = String(series.length); }
      }
    }
  };
  // Downloads go through fetch so the token travels in the header, never in a link.
  const download = async (format) => {
    try {
      read();
      const r = await api(query(format), { raw: true });
      const blob = await r.blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `eitwatch-indicators-${IND.area}-${IND.kind === 'custom' ? 'range' : IND.which}.${format}`;
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) {
      showError(e instanceof InputError ? e.message : `${t('indicators_missing')}: ${e.message}`);
    }
  };
  $('#ind-form').addEventListener('submit', (ev) => { ev.preventDefault(); show(); });
  $('#ind-kind').addEventListener('change', (ev) => {
    try { if (IND.kind === 'custom') read(); } catch (_) { /* keep the last valid days */ }
    IND.kind = ev.target.value;
    $('#ind-page').dataset.key = '';
    renderIndicatorsOnce();
    $('#ind-kind').focus();
  });
  $('#ind-csv').addEventListener('click', () => download('csv'));
  $('#ind-xlsx').addEventListener('click', () => download('xlsx'));
  $('#ind-print').addEventListener('click', () => window.print());
  show();
}

// Printing (or "print to PDF") shows every evidence table, and closes them again after.
let openedForPrint = [];
function beforePrint() {
  openedForPrint = [...document.querySelectorAll('details:not([open])')];
  for (const d of openedForPrint) d.open = true;
}
function afterPrint() {
  for (const d of openedForPrint) d.open = false;
  openedForPrint = [];
}
window.addEventListener('beforeprint', beforePrint);
window.addEventListener('afterprint', afterPrint);
matchMedia('print').addEventListener('change', (ev) => (ev.matches ? beforePrint() : afterPrint()));

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
  $('#lang').addEventListener('click', () => {
    S.lang = S.lang === 'th' ? 'en' : 'th';
    localStorage.setItem('eitwatch.lang', S.lang);
    if (!S.beChosen) S.be = S.lang === 'th';
    render();
  });
  $('#be').addEventListener('change', (ev) => { S.be = ev.target.checked; S.beChosen = true; localStorage.setItem('eitwatch.be', S.be ? '1' : '0'); render(); });
  // Off the network the stream is dead whatever the socket says (a phone losing signal):
  // say so; back on it, reconnect at once rather than at the browser's next retry.
  window.addEventListener('offline', () => {
    if (!S.events) return;
    S.events.close();
    clearTimeout(S.reconnectTimer);
    setLive('offline');
  });
  window.addEventListener('online', () => { if (S.site && S.live !== 'live') connectEvents(); });
  window.addEventListener('hashchange', render);
  // The status is polled as well: silence and closing periods change states without events.
  setInterval(() => {
    if (!S.site) return;
    loadStatus().then(render).catch(() => {});
    // A factory page on a moving range ("last 24 hours") follows the clock.
    const r = route();
    // Not while the officer is zoomed in.
    const zoomed = S.charts.some((u) => u.root.parentElement.parentElement.chart && u.scales.x.min !== u.root.parentElement.parentElement.chart.x0);
    const hit = r.view === 'factory' && S.range.preset !== 'custom' && !zoomed && findFactory(r.arg);
    if (hit) { const [from, to] = rangeNs(); loadCharts(hit.f, from, to); }
  }, 30000);
  render();
  if (S.token == null) askToken();
  else start();
}

init();
