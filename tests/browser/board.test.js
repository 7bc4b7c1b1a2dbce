// Drives Debian's headless Chromium (playwright-core) against a running eitwatch server.
// Started by tests/tests/board.rs, which starts the server, writes the scenario and passes:
//   BOARD_URL         http://127.0.0.1:<port>
//   ADMIN_TOKEN       a token that may acknowledge any alert
//   READ_TOKEN        a read token (sees everything, acknowledges nothing)
//   EXPECT_STATES     JSON {factory id: state} the overview must show
//   LIVE_FACTORY      the factory whose write token (LIVE_TOKEN) writes a reading over the limit
//   LIVE_LINE         that line-protocol line
//   SILENT_FACTORY    the silent factory, and its write token (SILENT_TOKEN): it reports
//                     late in the test, which resolves its no-data alert
//   SCREENSHOT_DIR    where the screenshots go
//   MIXED_FACTORY     a factory with a mixed hour starting at MIXED_HOUR_NS (ns): compliant
//                     grab samples and one over the limit in the same clock hour
// Exits 0 when every check holds; otherwise prints what failed and exits 1.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const env = (k) => {
  const v = process.env[k];
  if (v == null) throw new Error(`environment variable ${k} is not set`);
  return v;
};
const URL_ = env('BOARD_URL');
const ADMIN = env('ADMIN_TOKEN');
const EXPECT = JSON.parse(env('EXPECT_STATES'));
const LIVE_FACTORY = env('LIVE_FACTORY');
const LIVE_TOKEN = env('LIVE_TOKEN');
const LIVE_LINE = env('LIVE_LINE');
const SHOTS = env('SCREENSHOT_DIR');
const READ = env('READ_TOKEN');
const SILENT_FACTORY = env('SILENT_FACTORY');
const SILENT_TOKEN = env('SILENT_TOKEN');
const MIXED_FACTORY = env('MIXED_FACTORY');
const MIXED_HOUR_NS = Number(env('MIXED_HOUR_NS'));
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const BKK_MS = 7 * 3600e3;

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
  console.log(`ok: ${msg}`);
}

// axe-core on the page as it is: no serious or critical violation. Evaluated through the
// DevTools protocol, which the board's Content-Security-Policy does not govern.
async function axe(page, what) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  const bad = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  });
  check(bad.length === 0, `axe: no serious or critical accessibility violation on ${what}${bad.length ? ':\n  ' + bad.join('\n  ') : ''}`);
}

// Bangkok calendar parts of a time (ms).
function bkk(ms) {
  const d = new Date(ms + BKK_MS);
  return { y: d.getUTCFullYear(), m: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes() };
}
const p2 = (n) => String(n).padStart(2, '0');

// The chart of a parameter: its x range (s) and where a time falls on the page.
async function chartInfo(page, param) {
  return page.$eval(`section.chart[data-parameter="${param}"]`, (el) => {
    const u = el.uplot;
    const r = u.over.getBoundingClientRect();
    return { min: u.scales.x.min, max: u.scales.x.max, left: r.left, top: r.top, width: r.width, height: r.height };
  });
}

async function states(page) {
  return page.$$eval('#factories [data-factory]', (els) => els.map((e) => [e.dataset.factory, e.dataset.state]));
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'eitwatch-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  const errors = [];
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (e) => errors.push(String(e.stack || e)));
    // The board's Content-Security-Policy refuses inline script and style: nothing may trip it.
    page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) errors.push(m.text()); });

    // First visit: the board asks for the token once.
    await page.goto(`${URL_}/`);
    await page.waitForSelector('#token-dialog[open]', { timeout: 10000 });
    check(true, 'the board asks for a token on the first visit');
    await axe(page, 'the token dialog');
    await page.fill('#token-input', ADMIN);
    await page.click('#token-save');
    await page.waitForFunction((n) => document.querySelectorAll('#factories [data-factory]').length === n,
      Object.keys(EXPECT).length, { timeout: 10000 });

    // The overview: every factory with the state the scenario gives it.
    const shown = await states(page);
    for (const [id, want] of Object.entries(EXPECT)) {
      const got = shown.find(([f]) => f === id);
      check(got && got[1] === want, `overview: ${id} is ${want} (shown: ${got ? got[1] : 'missing'})`);
    }
    // The count per state above the list, and a click on one filters by it.
    for (const st of new Set(Object.values(EXPECT))) {
      const want = Object.values(EXPECT).filter((v) => v === st).length;
      const got = await page.$eval(`#state-counts [data-count-state="${st}"]`, (e) => Number(e.dataset.count));
      check(got === want, `the summary counts ${want} ${st} (shows ${got})`);
    }
    await page.click('#state-counts [data-count-state="exceeding"]');
    const onlyExceeding = (await states(page)).map(([, st]) => st);
    check(onlyExceeding.length > 0 && onlyExceeding.every((st) => st === 'exceeding'), `clicking "exceeding" shows only exceeding factories (${onlyExceeding.join(', ')})`);
    await page.click('#state-counts [data-count-state="exceeding"]');
    check((await states(page)).length === Object.keys(EXPECT).length, 'a second click shows every factory again');

    // Open alerts first: every factory with an open alert comes before every one without.
    const withAlerts = new Set(await page.$$eval('#open-alerts [data-alert-id]', (els) => els.map((e) => e.dataset.factory)));
    const order = shown.map(([f]) => withAlerts.has(f));
    check(order.indexOf(false) === -1 || order.lastIndexOf(true) < order.indexOf(false),
      `factories with open alerts first (order: ${shown.map(([f]) => f).join(', ')})`);
    await page.screenshot({ path: path.join(SHOTS, 'overview-en.png'), fullPage: true });
    await axe(page, 'the overview (English)');
    // Every label has its Thai.
    const missing = await page.evaluate(() => Object.keys(TEXT.en).filter((k) => TEXT.th[k] == null));
    check(missing.length === 0, `every English label has a Thai one (missing: ${missing.join(', ')})`);

    // Filter by area.
    const areas = await page.$$eval('#f-area option', (os_) => os_.map((o) => o.value).filter(Boolean));
    check(areas.length >= 2, `the area filter lists the areas (${areas.join(', ')})`);
    await page.selectOption('#f-area', areas[1]);
    const inArea = (await states(page)).map(([f]) => f);
    check(inArea.length > 0 && inArea.length < Object.keys(EXPECT).length, `filtering by area ${areas[1]} shows only its factories (${inArea.join(', ')})`);
    await page.selectOption('#f-area', '');
    await page.selectOption('#f-kind', 'emission');
    const emission = (await states(page)).map(([f]) => f);
    check(emission.length > 0 && emission.length < Object.keys(EXPECT).length, `filtering by type emission shows only stacks (${emission.join(', ')})`);
    await page.selectOption('#f-kind', '');

    // Live: a reading over the limit, written now, shows as an alert without a reload.
    await page.evaluate(() => { window.__notReloaded = true; });
    await page.waitForSelector('#live[data-status="live"]', { timeout: 5000 });
    const before = await page.$$eval(`#open-alerts [data-kind="exceedance"][data-factory="${LIVE_FACTORY}"]`, (els) => els.length);
    check(before === 0, `no exceedance alert for ${LIVE_FACTORY} before the write`);
    const started = Date.now();
    const r = await fetch(`${URL_}/api/v2/write?org=o&bucket=b&precision=ns`, {
      method: 'POST', headers: { Authorization: `Token ${LIVE_TOKEN}` }, body: LIVE_LINE,
    });
    check(r.status === 204, `the write over the limit is accepted (${r.status})`);
    const sel = `#open-alerts [data-kind="exceedance"][data-factory="${LIVE_FACTORY}"]`;
    await page.waitForSelector(sel, { timeout: 2000 });
    const elapsed = Date.now() - started;
    check(elapsed <= 2000, `the alert appeared on the open board ${elapsed} ms after the write (≤ 2000 ms)`);
    check(await page.evaluate(() => window.__notReloaded === true), 'the page was not reloaded');
    await page.waitForSelector(`#factories [data-factory="${LIVE_FACTORY}"][data-state="exceeding"]`, { timeout: 2000 });
    check(true, `${LIVE_FACTORY} turned exceeding on the overview`);
    const liveId = await page.$eval(sel, (e) => e.dataset.alertId);
    await page.screenshot({ path: path.join(SHOTS, 'overview-live-alert.png'), fullPage: true });

    // Acknowledge with a comment; it survives a reload.
    const comment = 'Operator called, aerator restarted (ทดสอบ)';
    // With the keyboard alone: Enter opens the form, Tab to the comment, Tab to Send, Enter.
    await page.focus(`[data-alert-id="${liveId}"] details.ackbox summary`);
    await page.keyboard.press('Enter');
    check(await page.$eval(`[data-alert-id="${liveId}"] details.ackbox`, (d) => d.open), 'Enter on "Acknowledge…" opens the form');
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.name === 'comment'), 'Tab reaches the comment');
    await page.keyboard.type(comment);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForSelector(`[data-alert-id="${liveId}"][data-state="acknowledged"]`, { timeout: 5000 });
    check(true, `alert ${liveId} is acknowledged on the board with the keyboard alone`);
    check(await page.evaluate((id) => document.activeElement.dataset.alertId === id, liveId), 'the acknowledged alert keeps the keyboard focus');
    await page.reload();
    await page.waitForSelector(`[data-alert-id="${liveId}"]`, { timeout: 10000 });
    check(!(await page.$('#token-dialog[open]')), 'after a reload the token is not asked again (kept in localStorage)');
    const after = await page.$eval(`[data-alert-id="${liveId}"]`, (e) => ({ state: e.dataset.state, comment: (e.querySelector('.ack-comment') || {}).textContent }));
    check(after.state === 'acknowledged' && after.comment === comment,
      `after a reload alert ${liveId} is still acknowledged with the comment (${JSON.stringify(after)})`);
    check(!(await page.$(`[data-alert-id="${liveId}"] form.ack`)), 'an acknowledged alert offers no second acknowledgement');

    // A comment being typed survives a live update of the list.
    const other = await page.$eval('#open-alerts [data-state="firing"][data-kind="exceedance"]', (e) => e.dataset.alertId);
    await page.click(`[data-alert-id="${other}"] details.ackbox summary`);
    await page.fill(`[data-alert-id="${other}"] textarea`, 'half-typed');
    const silentSel = `#open-alerts [data-kind="no_data"][data-factory="${SILENT_FACTORY}"]`;
    check(await page.$(silentSel), `${SILENT_FACTORY} has an open no-data alert`);
    const w = await fetch(`${URL_}/api/v2/write?org=o&bucket=b&precision=ns`, {
      method: 'POST', headers: { Authorization: `Token ${SILENT_TOKEN}` }, body: `effluent,factory=${SILENT_FACTORY},point=outfall-1 cod=50`,
    });
    check(w.status === 204, `${SILENT_FACTORY} reports (${w.status})`);
    await page.waitForSelector(silentSel, { state: 'detached', timeout: 5000 });
    check(true, `its no-data alert left the open alerts live`);
    const kept = await page.$eval(`[data-alert-id="${other}"]`, (e) => ({ open: e.querySelector('details').open, text: e.querySelector('textarea').value }));
    check(kept.open && kept.text === 'half-typed', `the comment being typed survived the update (${JSON.stringify(kept)})`);

    // English summaries: Bangkok times as dd/mm/yyyy hh:mm, never ISO; values at display precision.
    const enSummaries = await page.$$eval('#open-alerts .alert .summary', (els) => els.map((e) => e.textContent));
    check(enSummaries.length > 0 && enSummaries.every((x) => !/\d{4}-\d\d-\d\dT/.test(x) && !/\.\d{5,}/.test(x)), `alert summaries carry local times and rounded values (${enSummaries.join(' | ')})`);
    const enLive = await page.textContent(`[data-alert-id="${liveId}"] .summary`);
    check(enLive.startsWith('Chemical oxygen demand (COD) 200 mg/L exceeds ≤ 120 mg/L (moi-effluent-2560 clause 5.7) (grab sample) since '), `the exceedance is worded from its fields (${enLive})`);

    // Thai / English.
    check((await page.textContent('h1')) === 'Area overview', 'English heading');
    await page.click('#lang');
    check((await page.textContent('h1')) === 'ภาพรวมพื้นที่', 'the switch turns the heading Thai');
    const thaiState = await page.$eval(`#factories [data-factory="${LIVE_FACTORY}"] .state`, (e) => e.textContent);
    check(thaiState === 'เกินมาตรฐาน', `the state label is Thai (${thaiState})`);
    check((await page.textContent('header nav a')) === 'ภาพรวม', 'the navigation is Thai');
    const thaiSummary = await page.textContent(`[data-alert-id="${liveId}"] .summary`);
    // The server's Thai sentence (summary_th): grab sample, B.E. local time, applied limit.
    check(/^ซีโอดี ตัวอย่างแบบจ้วงเมื่อ \d\d\/\d\d\/25\d\d \d\d:\d\d น\.: 200 mg\/L เกินค่ามาตรฐานที่ใช้ 120 mg\/L \(ตามประกาศ/.test(thaiSummary), `the exceedance is worded in Thai, the value at COD's precision (${thaiSummary})`);
    // Every alert in Thai: no English summary, no parameter code.
    const summaries = await page.$$eval('#open-alerts .alert', (els) => els.map((e) => [e.dataset.kind, e.querySelector('.summary').textContent]));
    for (const [kind, text] of summaries) {
      check(/[\u0E00-\u0E7F]/.test(text) && !/\b(cod|ph|exceeds|sensor|no data)\b/i.test(text), `the ${kind} summary is Thai without codes ("${text}")`);
    }
    // B.E. is the default in Thai while the switch was never used; here it was not.
    check(await page.isChecked('#be'), 'Thai shows B.E. dates by default');
    // Buddhist era: the year is A.D. + 543.
    await page.check('#be');
    const year = new Date(Date.now() + 7 * 3600e3).getUTCFullYear();
    const since = await page.$eval(`[data-alert-id="${liveId}"] .head .muted`, (e) => e.textContent);
    check(since.includes(`/${year + 543} `), `B.E. dates: "${since}" has the year ${year + 543}`);
    await page.screenshot({ path: path.join(SHOTS, 'overview-th-be.png'), fullPage: true });
    await axe(page, 'the overview (Thai)');

    // Keyboard navigation: Enter on a factory opens it, the focus moves to its heading.
    await page.focus(`#factories [data-factory="${LIVE_FACTORY}"]`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#factory-page', { timeout: 5000 });
    check(await page.evaluate(() => document.activeElement.matches('h1[data-view="factory"]')), 'Enter on a factory opens its page with the focus on its heading');
    await page.goBack();
    await page.waitForSelector('#factories', { timeout: 5000 });

    // Factory page in Thai: uPlot chart, the catalog's Thai name, the applied limit, the
    // exceeding grab sample, the episode, a range that fits the data, a tooltip, zoom and pan.
    await page.click(`#factories [data-factory="${LIVE_FACTORY}"]`);
    const cod = 'section.chart[data-parameter="cod"]';
    await page.waitForSelector(`${cod} .plot canvas`, { timeout: 10000 });
    const title = await page.textContent(`${cod} .title h3`);
    check(title === 'ซีโอดี', `the chart is titled with the catalog's Thai name (${title})`);
    const limits = await page.$eval(cod, (e) => e.dataset.limits);
    check(limits === '120', `the chart draws the applied limit, 120 mg/L (${limits})`);
    check(await page.$(`${cod} tr[data-grab="exceeds"]`), 'the chart marks the exceeding grab sample');
    check(await page.$(`${cod} tr[data-episode]`), 'the chart marks the episode');
    const fit = await chartInfo(page, 'cod');
    // f-ok's readings span the last 10 minutes: the range fits them, not 30 days or 24 hours.
    check(fit.max - fit.min < 3600 && fit.max - fit.min > 600, `the default range fits the data (${Math.round(fit.max - fit.min)} s)`);
    // The ticks as drawn (uPlot keeps the strings it drew on the canvas).
    const ticks = await page.$eval(cod, (e) => [e.uplot.axes[0]._values, e.uplot.axes[1]._values, e.uplot.axes[0]._splits]);
    const hhmm = ticks[2].map((s) => { const b = bkk(s * 1000); return `${p2(b.h)}:${p2(b.mi)}`; });
    const days = ticks[2].map((s) => { const b = bkk(s * 1000); return `${p2(b.d)}/${p2(b.m)}`; });
    check(ticks[0].length > 1 && ticks[0].every((v, i) => v.endsWith(hhmm[i]) || (hhmm[i] === '00:00' && v === days[i])) && ticks[0][0].startsWith(days[0]),
      `the time axis has Bangkok clock ticks, the day first (${ticks[0].join(', ')})`);
    const ys = ticks[1].map((v) => Number(v.replace(/,/g, '')));
    const steps = new Set(ys.slice(1).map((v, i) => v - ys[i]));
    const step = [...steps][0];
    check(steps.size === 1 && /^(1|2|2\.5|5)0*$/.test(String(step).replace(/^0\.0*/, '')), `the value axis has nice ticks (${ticks[1].join(', ')})`);
    // The tooltip at the exceeding sample (the newest reading, 200 mg/L at the right).
    const grab = await page.$eval(cod, (e) => { const u = e.uplot; const i = u.data[0].length - 1; return u.valToPos(u.data[0][i], 'x'); });
    await page.mouse.move(fit.left + grab, fit.top + fit.height / 2);
    await page.waitForSelector(`${cod} .tip:not([hidden])`, { timeout: 2000 });
    const tip = await page.textContent(`${cod} .tip`);
    const yBe = bkk(Date.now()).y + 543;
    check(tip.includes('200 mg/L') && tip.includes(`/${yBe} `) && tip.includes('ใช้ได้'), `the tooltip gives the value at display precision, the B.E. time and the quality in Thai (${tip})`);
    await axe(page, 'a factory page (Thai)');
    await page.screenshot({ path: path.join(SHOTS, 'factory-th.png'), fullPage: true });
    // Zoom out, pan, back to the whole range; drag to zoom in.
    await page.click(`${cod} [data-zoom="out"]`);
    let z = await chartInfo(page, 'cod');
    check(Math.abs((z.max - z.min) - 2 * (fit.max - fit.min)) < 1, 'zoom out doubles the range');
    await page.click(`${cod} [data-zoom="left"]`);
    const panned = await chartInfo(page, 'cod');
    check(panned.max < z.max && Math.abs((panned.max - panned.min) - (z.max - z.min)) < 1, 'pan moves the range earlier');
    await page.click(`${cod} [data-zoom="reset"]`);
    z = await chartInfo(page, 'cod');
    check(z.min === fit.min && z.max === fit.max, 'the whole range again');
    await page.mouse.move(z.left + z.width * 0.2, z.top + z.height / 2);
    await page.mouse.down();
    await page.mouse.move(z.left + z.width * 0.6, z.top + z.height / 2, { steps: 5 });
    await page.mouse.up();
    const zin = await chartInfo(page, 'cod');
    check(zin.max - zin.min < 0.5 * (fit.max - fit.min), `dragging across the chart zooms in (${Math.round(zin.max - zin.min)} s)`);

    // Custom range in B.E. dd/mm/yyyy hh:mm: a day that does not exist is refused, naming the field.
    const today = bkk(Date.now());
    await page.selectOption('#r-preset', 'custom');
    await page.fill('#r-from', `31/02/${today.y + 543} 00:00`);
    await page.click('#r-show');
    const refused = await page.textContent('#r-error');
    check(refused.startsWith('ตั้งแต่: "31/02/') && await page.$('#r-from[aria-invalid="true"]'), `an impossible date is refused with the field named (${refused})`);
    await page.fill('#r-from', `${p2(today.d)}/${p2(today.m)}/${today.y + 543} 00:00`);
    await page.fill('#r-to', `${p2(today.d)}/${p2(today.m)}/${today.y + 543} 23:59`);
    await page.click('#r-show');
    await page.waitForSelector(`${cod} .plot canvas`, { timeout: 10000 });
    const custom = await chartInfo(page, 'cod');
    const midnight = Date.UTC(today.y, today.m - 1, today.d) - BKK_MS;
    check(custom.min * 1000 === midnight && custom.max * 1000 === midnight + (23 * 60 + 59) * 60e3, `the B.E. range is Bangkok ${p2(today.d)}/${p2(today.m)}/${today.y + 543} 00:00–23:59 (${new Date(custom.min * 1000).toISOString()})`);
    await page.uncheck('#be');
    const adFrom = await page.inputValue('#r-from');
    check(adFrom === `${p2(today.d)}/${p2(today.m)}/${today.y} 00:00`, `with the switch off the same range shows in A.D. (${adFrom})`);
    await page.selectOption('#r-preset', 'fit');
    await page.waitForSelector(`${cod} .plot canvas`, { timeout: 10000 });
    await page.click('#lang');
    check((await page.textContent(`${cod} .title h3`)) === 'Chemical oxygen demand (COD)', 'back in English the chart title is English');

    // The mixed hour: compliant grab samples and one over the limit in one clock hour. It
    // shows as mixed with its counts, and no pixel of it is green.
    await page.goto(`${URL_}/board/#/factory/${MIXED_FACTORY}`);
    await page.waitForSelector(`${cod} .plot canvas`, { timeout: 10000 });
    const row = await page.$(`${cod} tr[data-band][data-start-ns="${MIXED_HOUR_NS}"]`);
    check(row, 'the mixed hour is listed among the judged periods');
    const band = await row.getAttribute('data-band');
    const rowText = await row.textContent();
    check(band === 'mixed' && rowText.includes('2 compliant') && rowText.includes('1 exceeding'), `the mixed hour is "mixed", 2 compliant and 1 exceeding (${band}: ${rowText})`);
    const pixels = await page.$eval(cod, (el, startNs) => {
      const u = el.uplot;
      const x0 = u.valToPos(startNs / 1e9, 'x', true), x1 = u.valToPos(startNs / 1e9 + 3600, 'x', true);
      // A strip inside the hour, clear of its samples (at 10, 20, 30 minutes) and the top bar.
      const xa = Math.round(x0 + (x1 - x0) * 0.75), w = Math.max(2, Math.round((x1 - x0) * 0.15));
      const y = Math.round(u.bbox.top + u.bbox.height * 0.3), h = Math.round(u.bbox.height * 0.4);
      const img = u.ctx.getImageData(xa, y, w, h).data;
      let red = 0, green = 0;
      for (let i = 0; i < img.length; i += 4) {
        const [r, g, b, a] = [img[i], img[i + 1], img[i + 2], img[i + 3]];
        if (a < 10) continue;
        if (r > g + 40 && r > b + 40) red++;
        if (g > r + 20 && g > b + 10) green++;
      }
      return { red, green, w, h };
    }, MIXED_HOUR_NS);
    check(pixels.red > 0 && pixels.green === 0, `the mixed hour is drawn red-hatched, never green (${JSON.stringify(pixels)})`);
    const mi = await chartInfo(page, 'cod');
    const mx = await page.$eval(cod, (el, startNs) => el.uplot.valToPos(startNs / 1e9 + 2700, 'x'), MIXED_HOUR_NS);
    await page.mouse.move(mi.left + mx, mi.top + mi.height / 2);
    await page.waitForSelector(`${cod} .tip:not([hidden])`, { timeout: 2000 });
    const mtip = await page.textContent(`${cod} .tip`);
    check(mtip.includes('mixed period') && mtip.includes('2 compliant, 1 exceeding'), `the tooltip over the mixed hour says so with its counts (${mtip})`);
    await axe(page, 'a factory page (English)');
    await page.screenshot({ path: path.join(SHOTS, 'factory-mixed-hour.png'), fullPage: true });
    await page.click('#lang');
    await page.waitForSelector(`${cod} tr[data-band][data-start-ns="${MIXED_HOUR_NS}"]`, { state: 'attached', timeout: 10000 });
    const thMixed = await page.textContent(`${cod} tr[data-band][data-start-ns="${MIXED_HOUR_NS}"]`);
    check(thMixed.includes('ช่วงเวลาที่มีตัวอย่างแบบจ้วงเกินค่ามาตรฐานปนอยู่') && thMixed.includes('2 ผ่าน') && thMixed.includes('1 เกิน'), `in Thai too (${thMixed})`);
    // "exceeding period" and "exceedance episode" are distinct terms in Thai.
    const terms = await page.evaluate(() => [TEXT.th.p_exceeds, TEXT.th.episode]);
    check(terms[0] !== terms[1], `Thai distinguishes an exceeding period (${terms[0]}) from an exceedance episode (${terms[1]})`);
    await page.click('#lang');

    // A stack with an hour judged "insufficient data", shaded as such.
    const insufficient = Object.entries(EXPECT).find(([, s]) => s === 'insufficient_data');
    if (insufficient) {
      await page.goto(`${URL_}/board/#/factory/${insufficient[0]}`);
      await page.waitForSelector('section.chart[data-parameter="so2"] .plot canvas', { timeout: 10000 });
      check(await page.$('section.chart[data-parameter="so2"] tr[data-band="insufficient_data"]'), 'the SO₂ chart shades the insufficient hour');
      const so2 = await chartInfo(page, 'so2');
      check(so2.max - so2.min > 7200 && so2.max - so2.min < 4 * 3600, `the stack's range fits its readings two hours apart (${Math.round(so2.max - so2.min)} s)`);
      const units = await page.$$eval('section.chart .title .muted', (els) => els.map((e) => e.textContent).join(' | '));
      check(!/m3|Nm3|degC/.test(units), `units are typeset (${units})`);
      const typeset = await page.evaluate(() => [fmtValue(12.345, { code: 'flow', unit: 'm3/h' }), fmtValue(31.26, { code: 'temp', unit: 'degC' }), fmtValue(88.91004283674441, { code: 'tsp', unit: 'mg/Nm3' }), fmtValue(7.456, { code: 'ph', unit: 'pH' })]);
      check(typeset.join(' | ') === '12.3 m³/h | 31.3 °C | 89 mg/Nm³ | 7.46', `values at display precision with typeset units (${typeset.join(' | ')})`);
      await page.selectOption('#r-preset', 'd7');
      await page.waitForSelector('section.chart[data-parameter="so2"] .plot canvas', { timeout: 10000 });
      // Seven days: ticks name each day once, the lone readings are drawn as points.
      const week = await page.$eval('section.chart[data-parameter="so2"]', (e) => [e.uplot.axes[0]._values, e.uplot.series[1].points.filter(e.uplot, 1).length]);
      const labels = week[0].filter((v) => /^\d\d\/\d\d/.test(v)).map((v) => v.slice(0, 5));
      check(labels.length >= 6 && new Set(labels).size === labels.length, `a week's ticks name each day once (${week[0].join(', ').replace(/\n/g, ' ')})`);
      check(week[1] === 2, `the stack's two lone readings are drawn as points (${week[1]})`);
      await page.screenshot({ path: path.join(SHOTS, 'factory-stack.png'), fullPage: true });
    }

    // Indicators, in English: the report for the current month with its trend.
    await page.goto(`${URL_}/board/#/indicators`);
    await page.waitForSelector('#report section.indicator', { timeout: 10000 });
    const now = bkk(Date.now());
    const asked = await page.textContent('#ind-url');
    check(asked.includes(`period=${now.y}-${p2(now.m)}`), `the indicators page asks for this month first (${asked})`);
    const nInd = await page.$$eval('#report section.indicator', (els) => els.length);
    check(nInd >= 3, `the report has its indicators (${nInd})`);
    const head = await page.$$eval('#report section.indicator table.values thead th', (els) => els.slice(0, 5).map((e) => e.textContent));
    check(head.join('|') === 'Indicator|Value|Previous|Change|Trend', `each indicator has value, previous, change and trend (${head.join('|')})`);
    await page.waitForSelector('#report td.trend[data-points="6"]', { timeout: 15000 });
    check(true, 'the trend covers this month and the five before');
    check(!(await page.$('#ind-out pre')), 'no raw JSON');
    await page.screenshot({ path: path.join(SHOTS, 'indicators.png'), fullPage: true });
    await axe(page, 'the indicators report (English)');

    // In Thai: quarter and fiscal-year pickers, B.E. names, then a custom range over
    // yesterday and today typed in B.E. that holds the mixed hour's episode.
    await page.click('#lang');
    await page.check('#be');
    await page.selectOption('#ind-kind', 'quarter');
    await page.click('#ind-show');
    await page.waitForFunction((q) => document.querySelector('#ind-url').textContent.includes(q), `period=${now.y}-Q${Math.floor((now.m - 1) / 3) + 1}`, { timeout: 5000 });
    check(true, 'the quarter picker asks for this quarter');
    await page.selectOption('#ind-kind', 'fy');
    const fy = now.m >= 10 ? now.y + 1 : now.y;
    const fyLabel = await page.$eval('#ind-which option:checked', (o) => o.textContent);
    check(fyLabel.startsWith(`ปีงบประมาณ ${fy + 543} (01/10/${fy + 542} – 30/09/${fy + 543})`), `the Thai fiscal year is named by its end, in B.E. (${fyLabel})`);
    await page.click('#ind-show');
    await page.waitForFunction((q) => document.querySelector('#ind-url').textContent.includes(q), `period=FY${fy}`, { timeout: 5000 });
    check(true, `the fiscal-year picker asks for FY${fy}`);
    await page.selectOption('#ind-kind', 'custom');
    const yesterday = bkk(Date.now() - 86400e3);
    await page.fill('#ind-from', `${p2(yesterday.d)}/${p2(yesterday.m)}/${yesterday.y + 543}`);
    await page.fill('#ind-to', `${p2(now.d)}/${p2(now.m)}/${now.y + 543}`);
    await page.click('#ind-show');
    const dayAfter = bkk(Date.now() + 86400e3);
    const wantRange = `from=${yesterday.y}-${p2(yesterday.m)}-${p2(yesterday.d)}&to=${dayAfter.y}-${p2(dayAfter.m)}-${p2(dayAfter.d)}`;
    await page.waitForFunction((q) => document.querySelector('#ind-url').textContent.includes(q), wantRange, { timeout: 5000 });
    await page.waitForSelector('#report section.episodes', { timeout: 10000 });
    check(true, `the custom B.E. days ask for ${wantRange}`);
    const episodeRows = await page.$$eval('#report section.episodes tbody tr', (els) => els.map((e) => e.textContent));
    const mixedRow = episodeRows.find((r) => r.includes('Exceeding Ceramics') && r.includes('ซีโอดี') && r.includes('160 mg/L'));
    check(mixedRow && new RegExp(`\\d\\d/\\d\\d/${now.y + 543} \\d\\d:\\d\\d`).test(mixedRow) && mixedRow.includes('160 mg/L'), `the episodes table has local B.E. times and the peak at display precision (${mixedRow})`);
    const thHead = await page.$$eval('#report section.indicator table.values thead th', (els) => els.slice(0, 5).map((e) => e.textContent));
    check(thHead.join('|') === 'ตัวชี้วัด|ค่า|รอบก่อน|เปลี่ยนแปลง|แนวโน้ม', `the report's headings are Thai (${thHead.join('|')})`);
    // Evidence opens into a table.
    await page.click('#report section.indicator details.evidence summary');
    const evRows = await page.$$eval('#report section.indicator details.evidence[open] tbody tr', (els) => els.length);
    check(evRows > 0, `the evidence opens into a table (${evRows} rows)`);
    await axe(page, 'the indicators report (Thai)');
    await page.screenshot({ path: path.join(SHOTS, 'indicators-th.png'), fullPage: true });
    // Print: no header or pickers, every evidence table open; and a PDF for a person to see.
    await page.emulateMedia({ media: 'print' });
    // The board opens them on the print media change, which comes with the next frame.
    await page.waitForFunction(() => document.querySelectorAll('#report details:not([open])').length === 0, null, { timeout: 5000 }).catch(() => {});
    const printed = await page.evaluate(() => ({
      header: getComputedStyle(document.querySelector('header')).display,
      pickers: getComputedStyle(document.querySelector('#ind-form')).display,
      closed: document.querySelectorAll('#report details:not([open])').length,
    }));
    check(printed.header === 'none' && printed.pickers === 'none' && printed.closed === 0, `printing shows the report alone with its evidence open (${JSON.stringify(printed)})`);
    await page.pdf({ path: path.join(SHOTS, 'indicators-th.pdf'), format: 'A4', printBackground: true });
    await page.emulateMedia({ media: 'screen' });
    check(fs.statSync(path.join(SHOTS, 'indicators-th.pdf')).size > 10000, 'the printed report is saved as a PDF');
    await page.click('#lang');

    // Catching up: offline, an alert happens; back online the board says it is catching up
    // and then shows the alert it missed.
    await page.goto(`${URL_}/board/#/`);
    await page.waitForSelector('#live[data-status="live"]', { timeout: 10000 });
    const seen = [];
    await page.exposeFunction('__liveStatus', (s) => seen.push(s));
    await page.evaluate(() => new MutationObserver(() => window.__liveStatus(document.querySelector('#live').dataset.status)).observe(document.querySelector('#live'), { attributes: true, attributeFilter: ['data-status'] }));
    await context.setOffline(true);
    await page.waitForSelector('#live:not([data-status="live"])', { timeout: 15000 });
    const down = await page.$eval('#live', (e) => [e.dataset.status, e.textContent]);
    check(down[0] === 'reconnecting' || down[0] === 'offline', `offline, the board says so (${down.join(': ')})`);
    const missed = await fetch(`${URL_}/api/v2/write?org=o&bucket=b&precision=ns`, {
      method: 'POST', headers: { Authorization: `Token ${SILENT_TOKEN}` }, body: `effluent,factory=${SILENT_FACTORY},point=outfall-1 cod=190`,
    });
    check(missed.status === 204, `an exceedance of ${SILENT_FACTORY} while the board is offline (${missed.status})`);
    await context.setOffline(false);
    await page.waitForSelector(`#open-alerts [data-kind="exceedance"][data-factory="${SILENT_FACTORY}"]`, { timeout: 15000 });
    await page.waitForSelector('#live[data-status="live"]', { timeout: 10000 });
    check(seen.includes('catching_up'), `back online the board showed it was catching up (${seen.join(' → ')}) and shows the missed alert`);

    // A phone: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${URL_}/board/#/`);
    await page.waitForSelector('#factories [data-factory]', { timeout: 10000 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `on a 390 px phone nothing scrolls sideways (overflow ${overflow} px)`);
    await page.screenshot({ path: path.join(SHOTS, 'overview-phone.png'), fullPage: true });
    for (const [what, url, sel] of [['a factory page', `/board/#/factory/${MIXED_FACTORY}`, 'section.chart .plot canvas'], ['the indicators report', '/board/#/indicators', '#report section.indicator']]) {
      await page.goto(`${URL_}${url}`);
      await page.waitForSelector(sel, { timeout: 10000 });
      const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(over <= 0, `on the phone ${what} does not scroll sideways (overflow ${over} px)`);
    }
    await page.goto(`${URL_}/board/#/`);

    // A read token looks but may not acknowledge: the board offers no acknowledgement.
    await page.evaluate((t) => localStorage.setItem('eitwatch.token', t), READ);
    await page.reload();
    await page.waitForSelector('#open-alerts [data-alert-id][data-state="firing"]', { timeout: 10000 });
    await axe(page, 'the overview on a phone with a read token');
    check(!(await page.$('details.ackbox')), 'with a read token no alert offers an acknowledgement');

    check(errors.length === 0, `no script errors on the page (${errors.join('; ')})`);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => console.log('board: all checks passed'), (e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
