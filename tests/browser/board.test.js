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

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
  console.log(`ok: ${msg}`);
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
    page.on('pageerror', (e) => errors.push(String(e)));

    // First visit: the board asks for the token once.
    await page.goto(`${URL_}/`);
    await page.waitForSelector('#token-dialog[open]', { timeout: 10000 });
    check(true, 'the board asks for a token on the first visit');
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
    await page.waitForSelector('#live.on', { timeout: 5000 });
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
    await page.click(`[data-alert-id="${liveId}"] details.ackbox summary`);
    await page.fill(`[data-alert-id="${liveId}"] textarea`, comment);
    await page.click(`[data-alert-id="${liveId}"] form.ack button`);
    await page.waitForSelector(`[data-alert-id="${liveId}"][data-state="acknowledged"]`, { timeout: 5000 });
    check(true, `alert ${liveId} is acknowledged on the board`);
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

    // Thai / English.
    check((await page.textContent('h1')) === 'Area overview', 'English heading');
    await page.click('#lang');
    check((await page.textContent('h1')) === 'ภาพรวมพื้นที่', 'the switch turns the heading Thai');
    const thaiState = await page.$eval(`#factories [data-factory="${LIVE_FACTORY}"] .state`, (e) => e.textContent);
    check(thaiState === 'เกินมาตรฐาน', `the state label is Thai (${thaiState})`);
    check((await page.textContent('header nav a')) === 'ภาพรวม', 'the navigation is Thai');
    const thaiSummary = await page.textContent(`[data-alert-id="${liveId}"] .summary`);
    check(thaiSummary.startsWith('ซีโอดี 200.0 mg/L เกินค่ามาตรฐาน ≤ 120 mg/L (moi-effluent-2560 ข้อ 5.7)'), `the exceedance is worded in Thai (${thaiSummary})`);
    // Buddhist era: the year is A.D. + 543.
    await page.check('#be');
    const year = new Date(Date.now() + 7 * 3600e3).getUTCFullYear();
    const since = await page.$eval(`[data-alert-id="${liveId}"] .head .muted`, (e) => e.textContent);
    check(since.includes(`/${year + 543} `), `B.E. dates: "${since}" has the year ${year + 543}`);
    await page.screenshot({ path: path.join(SHOTS, 'overview-th-be.png'), fullPage: true });
    await page.uncheck('#be');

    // Factory page in Thai: the catalog's Thai parameter name, limit line, judged periods, episode.
    await page.click(`#factories [data-factory="${LIVE_FACTORY}"]`);
    await page.waitForSelector('section.chart[data-parameter="cod"] svg', { timeout: 10000 });
    const title = await page.textContent('section.chart[data-parameter="cod"] .title strong');
    check(title === 'ซีโอดี', `the chart is titled with the catalog's Thai name (${title})`);
    check(await page.$('section.chart[data-parameter="cod"] line.limit'), 'the chart draws the limit line');
    check(await page.$('section.chart[data-parameter="cod"] [data-outcome="exceeds"]'), 'the chart marks the exceeding grab sample');
    check(await page.$('section.chart[data-parameter="cod"] rect.episode'), 'the chart marks the episode');
    await page.screenshot({ path: path.join(SHOTS, 'factory-th.png'), fullPage: true });
    await page.click('#lang');
    check((await page.textContent('section.chart[data-parameter="cod"] .title strong')) === 'Chemical oxygen demand (COD)', 'back in English the chart title is English');

    // A stack with an hour judged "insufficient data", shaded as such.
    const insufficient = Object.entries(EXPECT).find(([, s]) => s === 'insufficient_data');
    if (insufficient) {
      await page.goto(`${URL_}/board/#/factory/${insufficient[0]}`);
      await page.waitForSelector('section.chart[data-parameter="so2"] svg', { timeout: 10000 });
      check(await page.$('section.chart[data-parameter="so2"] rect.period[data-outcome="insufficient_data"]'), 'the SO₂ chart shades the insufficient hour');
      await page.selectOption('#r-preset', 'd7');
      await page.waitForSelector('section.chart[data-parameter="so2"] svg', { timeout: 10000 });
      await page.screenshot({ path: path.join(SHOTS, 'factory-stack.png'), fullPage: true });
    }

    // Indicators page: the export buttons are there (the API may answer or not).
    await page.goto(`${URL_}/board/#/indicators`);
    await page.waitForSelector('#ind-csv', { timeout: 5000 });
    await page.waitForFunction(() => !document.querySelector('#ind-out').textContent.includes('…'), null, { timeout: 5000 });
    const asked = await page.textContent('#ind-url');
    check(/^GET \/api\/v1\/indicators\?area=[\w-]+&from=\d{4}-\d\d-\d\dT00%3A00%3A00%2B07%3A00&to=/.test(asked), `the indicators page asks ${asked}`);
    check(await page.$('#ind-out pre, #ind-out .error'), 'and shows the answer (JSON) or why there is none');
    await page.screenshot({ path: path.join(SHOTS, 'indicators.png'), fullPage: true });

    // A phone: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${URL_}/board/#/`);
    await page.waitForSelector('#factories [data-factory]', { timeout: 10000 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `on a 390 px phone nothing scrolls sideways (overflow ${overflow} px)`);
    await page.screenshot({ path: path.join(SHOTS, 'overview-phone.png'), fullPage: true });

    // A read token looks but may not acknowledge: the board offers no acknowledgement.
    await page.evaluate((t) => localStorage.setItem('eitwatch.token', t), READ);
    await page.reload();
    await page.waitForSelector('#open-alerts [data-alert-id][data-state="firing"]', { timeout: 10000 });
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
