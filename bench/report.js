'use strict';

// The benchmark's tables and the issue's targets, from a run's results.
// bench/run.js prints them at the end of a run; as a command it prints them
// again from saved runs:
//
//   node bench/report.js bench/results/<run>.json            the tables
//   node bench/report.js bench/results/<a>.json <b>.json     and b against a, row by row (the noise)
const fs = require('fs');

const IMPLS = ['reference', 'addon', 'insertOne', 'bulk'];

function fmt(v, digits = 0) {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

const finder = (results) => (collection, workload, impl) => results.find((r) => r.collection === collection && r.workload === workload && r.impl === impl);
const perSec = (a, b) => (a && b && b.uploadsPerSec > 0 ? a.uploadsPerSec / b.uploadsPerSec : null);
const unique = (xs) => [...new Set(xs)];

function table(results) {
  const lines = ['| collection | workload | impl | uploads/s | p50 ms | p99 ms | retries/upload | failed | done |', '|---|---|---|---:|---:|---:|---:|---:|---:|'];
  for (const r of results) {
    lines.push(
      `| ${r.collection} | ${r.workload} | ${r.impl} | ${fmt(r.uploadsPerSec)} | ${fmt(r.p50ms, 1)} | ${fmt(r.p99ms, 1)} | ${fmt(r.retriesPerUpload, 2)} | ${r.failures} | ${r.succeeded + r.failures}/${r.total}${r.timedOut ? ` (capped${r.unfinished ? `, ${r.unfinished} cut off` : ''})` : ''} |`,
    );
  }
  return lines.join('\n');
}

/** The addon's uploads/s over each other implementation's, per workload. */
function ratios(results) {
  const get = finder(results);
  const rows = [];
  for (const collection of unique(results.map((r) => r.collection))) {
    for (const workload of unique(results.filter((r) => r.collection === collection).map((r) => r.workload))) {
      const addon = get(collection, workload, 'addon');
      rows.push({
        collection,
        workload,
        addonVsBulk: perSec(addon, get(collection, workload, 'bulk')),
        addonVsInsertOne: perSec(addon, get(collection, workload, 'insertOne')),
        addonVsReference: perSec(addon, get(collection, workload, 'reference')),
      });
    }
  }
  return rows;
}

function ratioTable(rows) {
  const lines = ['| collection | workload | addon / bulk | addon / insertOne | addon / reference |', '|---|---|---:|---:|---:|'];
  for (const r of rows) {
    lines.push(
      `| ${r.collection} | ${r.workload} | ${fmt(r.addonVsBulk, 2)}× | ${fmt(r.addonVsInsertOne, 2)}× | ${r.addonVsReference === null ? '–' : `${fmt(r.addonVsReference, r.addonVsReference < 100 ? 1 : 0)}×`} |`,
    );
  }
  return lines.join('\n');
}

/** The issue's targets ("Many orders at once"), checked per collection. */
function targets(results) {
  const get = finder(results);
  const out = [];
  for (const collection of unique(results.map((r) => r.collection))) {
    const many = get(collection, '1000 orders x 10', 'addon');
    const manyBulk = get(collection, '1000 orders x 10', 'bulk');
    const hot = get(collection, 'same order, c=1000', 'addon');
    const single = get(collection, '10000 orders x 1', 'addon');
    const singleBulk = get(collection, '10000 orders x 1', 'bulk');
    const c1 = get(collection, 'same order, c=1', 'addon');
    const c1One = get(collection, 'same order, c=1', 'insertOne');
    const addonRuns = results.filter((r) => r.collection === collection && r.impl === 'addon');
    const check = (target, value, limit, measured, atMost = false) =>
      out.push({ collection, target, measured, met: value === null || value === undefined ? null : atMost ? value <= limit : value >= limit });
    const vsBulk = perSec(many, manyBulk);
    check('1000 orders × 10: addon ≥ 0.5× bulk', vsBulk, 0.5, `${fmt(vsBulk, 2)}× (${fmt(many && many.uploadsPerSec)} vs ${fmt(manyBulk && manyBulk.uploadsPerSec)} uploads/s)`);
    const p50Ratio = many && hot ? many.p50ms / hot.p50ms : null;
    check('1000 orders × 10: addon p50 ≤ 2× one-order c=1000 p50', p50Ratio, 2, `${fmt(p50Ratio, 2)}× (${fmt(many && many.p50ms, 1)} vs ${fmt(hot && hot.p50ms, 1)} ms)`, true);
    const singleVsBulk = perSec(single, singleBulk);
    check(
      '10 000 orders × 1: addon ≥ 0.3× bulk',
      singleVsBulk,
      0.3,
      `${fmt(singleVsBulk, 2)}× (${fmt(single && single.uploadsPerSec)} vs ${fmt(singleBulk && singleBulk.uploadsPerSec)} uploads/s)`,
    );
    const c1Ratio = c1 && c1One ? c1.p50ms / c1One.p50ms : null;
    check('c=1: addon p50 within 10 % of insertOne', c1Ratio, 1.1, `${fmt(c1Ratio, 2)}× (${fmt(c1 && c1.p50ms, 2)} vs ${fmt(c1One && c1One.p50ms, 2)} ms)`, true);
    const failed = addonRuns.reduce((n, r) => n + r.failures, 0);
    const capped = addonRuns.filter((r) => r.timedOut).map((r) => `${r.workload} ${r.succeeded}/${r.total}`);
    check(
      'addon: 0 failures',
      failed,
      0,
      `${failed} failed of ${fmt(addonRuns.reduce((n, r) => n + r.uploads, 0))} uploads${capped.length ? `; stopped at the time cap, unfailed: ${capped.join(', ')}` : ''}`,
      true,
    );
  }
  return out;
}

function targetTable(rows) {
  const lines = ['| collection | target | measured | |', '|---|---|---|---|'];
  for (const t of rows) lines.push(`| ${t.collection} | ${t.target} | ${t.measured} | ${t.met === null ? 'not measured' : t.met ? 'met' : '**missed**'} |`);
  return lines.join('\n');
}

/** Run b against run a, uploads/s and p50 per row: what the noise is. */
function compareRuns(a, b) {
  const get = finder(b.results);
  const lines = ['| collection | workload | impl | uploads/s a | uploads/s b | b / a | p50 a | p50 b |', '|---|---|---|---:|---:|---:|---:|---:|'];
  for (const r of a.results) {
    const s = get(r.collection, r.workload, r.impl);
    if (!s) continue;
    lines.push(
      `| ${r.collection} | ${r.workload} | ${r.impl} | ${fmt(r.uploadsPerSec)} | ${fmt(s.uploadsPerSec)} | ${fmt(perSec(s, r), 2)} | ${fmt(r.p50ms, 1)} | ${fmt(s.p50ms, 1)} |`,
    );
  }
  return lines.join('\n');
}

function machineLine(m) {
  return `${m.date} · ${m.cpu} (${m.cores} cores, ${m.memGiB} GiB) · ${m.server} · Node ${m.node} · libmongoc ${m.libmongoc}${m.runSeconds ? ` · ${fmt(m.runSeconds / 60, 1)} min` : ''}${m.loadAverage ? ` · load average ${fmt(m.loadAverage.start[0], 1)} at the start, ${fmt(m.loadAverage.end[0], 1)} at the end` : ''}`;
}

function probes({ reads = [], threadpool, memory }) {
  return [
    ...reads.map((r) => `the addon's read of top versions, alone, on ${fmt(r.docs)} assets: one order ${fmt(r.oneOrderMs, 1)} ms, 1000 orders ${fmt(r.thousandOrdersMs, 1)} ms`),
    `fs.readFile p99: idle ${fmt(threadpool.idle.p99ms, 2)} ms, during ${threadpool.bursts} bursts of 1000 uploads ${fmt(threadpool.duringBursts.p99ms, 2)} ms (${fmt(threadpool.ratioP99, 2)}x); ` +
      `control, the same load as plain driver inserts: ${fmt(threadpool.duringDriverInserts.p99ms, 2)} ms (${fmt(threadpool.controlRatioP99, 2)}x)`,
    `memory: ${fmt(memory.uploads)} uploads in ${fmt(memory.seconds, 1)} s, ${memory.failed} failed; RSS ${memory.rss.map((r) => fmt(r.rssMiB)).join(' → ')} MiB (growth ${fmt(memory.growthMiB, 1)} MiB)`,
  ].join('\n');
}

function report(run) {
  return [
    machineLine(run.machine),
    '',
    table(run.results),
    '',
    ratioTable(ratios(run.results)),
    '',
    targetTable(targets(run.results)),
    '',
    run.threadpool && run.memory ? probes(run) : '',
  ].join('\n');
}

module.exports = { IMPLS, MANY_ORDERS: ['1000 orders x 10', '10000 orders x 1'], fmt, report, ratios, targets };

if (require.main === module) {
  const runs = process.argv.slice(2).map((file) => JSON.parse(fs.readFileSync(file, 'utf8')));
  if (runs.length === 0) {
    console.error('usage: node bench/report.js <run.json> [<other run.json>]');
    process.exit(2);
  }
  console.log(report(runs[0]));
  if (runs[1]) console.log(`\n${machineLine(runs[1].machine)}\n\n${compareRuns(runs[0], runs[1])}`);
}
