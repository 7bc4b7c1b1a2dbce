// Checks every Flux query of the Grafana dashboards with InfluxData's own Flux analyser
// (@influxdata/flux-lsp-browser, the WebAssembly build of the Flux language server): syntax,
// and the semantic check of builtin functions and their parameters.
//
//   node tests/browser/flux-check.mjs <dashboards dir>     checks every *.json there
//   node tests/browser/flux-check.mjs --self-test          proves a broken query is refused
//
// Grafana replaces its macros and variables before it sends a query; so does this, with
// values of the same type (a time, a duration, a bucket name, a regex, a number).
// Run from tests/tests/grafana.rs. Prints one line per query; exits 1 if any is invalid.
import fs from 'fs';
import os from 'os';
import path from 'path';
import { fileURLToPath } from 'url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.join(here, 'node_modules/@influxdata/flux-lsp-browser');

// The package is built for bundlers (`import * as wasm from '….wasm'`), which Node cannot
// load as is: the glue module gets the instantiated module by hand instead.
async function loadFlux() {
  let glue = fs.readFileSync(path.join(pkg, 'flux-lsp-browser_bg.js'), 'utf8');
  const head = "import * as wasm from './flux-lsp-browser_bg.wasm';";
  const tail = 'cachedInt32Memory0 = new Int32Array(wasm.memory.buffer);\ncachedUint8Memory0 = new Uint8Array(wasm.memory.buffer);';
  if (!glue.includes(head) || !glue.includes(tail)) {
    throw new Error(`${pkg}: the glue code is not the one of version 0.8.40 (see package-lock.json)`);
  }
  glue = glue.replace(head, 'let wasm;').replace(tail,
    'export function __init(w) { wasm = w; cachedInt32Memory0 = new Int32Array(wasm.memory.buffer); cachedUint8Memory0 = new Uint8Array(wasm.memory.buffer); }');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eitwatch-flux-'));
  try {
    fs.writeFileSync(path.join(dir, 'glue.mjs'), glue);
    const bg = await import(path.join(dir, 'glue.mjs'));
    const bytes = fs.readFileSync(path.join(pkg, 'flux-lsp-browser_bg.wasm'));
    const { instance } = await WebAssembly.instantiate(bytes, { './flux-lsp-browser_bg.js': bg });
    bg.__init(instance.exports);
    return bg;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Grafana's Flux macros and this project's dashboard variables, as Grafana would fill them.
function interpolate(q) {
  return q
    .replaceAll('v.timeRangeStart', '2026-11-22T17:00:00Z')
    .replaceAll('v.timeRangeStop', '2026-11-23T17:00:00Z')
    .replaceAll('v.windowPeriod', '1m')
    .replaceAll('v.defaultBucket', '"eitwatch"')
    .replace(/\$\{(\w+):regex\}/g, '.*')
    .replaceAll('${expected_per_hour}', '60')
    .replace(/\$\{(\w+)\}/g, 'mm-ceramics');
}

function valid(flux, q) {
  const script = interpolate(q);
  const f = new flux.Flux(script);
  try {
    return flux.is_valid_flux(script) && f.is_valid();
  } finally {
    f.free();
  }
}

function queries(d) {
  const out = [];
  const panels = (d.panels || []).flatMap((p) => [p, ...(p.panels || [])]);
  for (const p of panels) for (const t of p.targets || []) if (t.query) out.push([`panel "${p.title}" ${t.refId}`, t.query]);
  // Variables of other datasources (the server-operations dashboard's Prometheus) are not Flux.
  for (const v of (d.templating && d.templating.list) || []) {
    if (v.type === 'query' && (v.datasource || {}).type === 'influxdb') out.push([`variable ${v.name}`, v.query]);
  }
  return out;
}

const flux = await loadFlux();
const arg = process.argv[2];
if (arg === '--self-test') {
  const good = 'from(bucket: v.defaultBucket)\n  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n  |> filter(fn: (r) => r._measurement == "effluent" and r.factory =~ /^${factory:regex}$/)\n  |> aggregateWindow(every: v.windowPeriod, fn: max, createEmpty: false)';
  const cases = [
    [good, true],
    [good.replace('fn: max', 'fn: maxx'), false], // no such function
    [good.replace('createEmpty', 'create_empty'), false], // no such parameter
    [good.replace('|> range(', '|> range('.slice(0, -1)), false], // syntax
    [good.replace('r._measurement == "effluent"', 'r._measurement == 1 +'), false],
  ];
  let failed = 0;
  for (const [q, want] of cases) {
    const got = valid(flux, q);
    console.log(`${got === want ? 'ok' : 'WRONG'}: valid=${got}, expected ${want}`);
    if (got !== want) failed++;
  }
  process.exit(failed ? 1 : 0);
}
if (!arg) throw new Error('usage: flux-check.mjs <dashboards dir> | --self-test');
let bad = 0;
let n = 0;
for (const name of fs.readdirSync(arg).filter((f) => f.endsWith('.json')).sort()) {
  const d = JSON.parse(fs.readFileSync(path.join(arg, name), 'utf8'));
  for (const [where, q] of queries(d)) {
    n++;
    if (valid(flux, q)) {
      console.log(`valid: ${name}: ${where}`);
    } else {
      bad++;
      console.log(`INVALID: ${name}: ${where}\n${interpolate(q)}\n`);
    }
  }
}
console.log(`${n} queries, ${bad} invalid`);
process.exit(bad || n === 0 ? 1 : 0);
