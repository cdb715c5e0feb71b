'use strict';

// bench/main-thread.js for two or more builds side by side, interleaved
// (A B A B …: one process per side and pass), so that the load of a shared
// machine falls on every side alike. Each side is a checkout (its lib/) and
// the addon built from it (picked with ATOMIC_ASSET_VERSION_ADDON); its
// bench/main-thread.js must take --json and MAIN_THREAD_ROUNDS (copy this
// commit's into an older checkout). A script, not a test (issue #19).
//
//   node bench/ab-main-thread.js main=/work/a:/tmp/main.node objects=/work/b:/tmp/objects.node
//   PASSES=6 MAIN_THREAD_ROUNDS=5 node bench/ab-main-thread.js …   (the defaults)
//
// Prints, per process, the addon's main-thread CPU ms for 10 000 uploads in
// each round, its median, the driver's median in the same process and their
// ratio; then per side the median and range of the processes' medians.
const { spawnSync } = require('child_process');
const os = require('os');
const path = require('path');
const { startFerretDB } = require('../scripts/ferretdb');

const PASSES = Number(process.env.PASSES) || 6;
const ROUNDS = Number(process.env.MAIN_THREAD_ROUNDS) || 5;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function sides() {
  const given = process.argv.slice(2).map((arg) => {
    const m = /^([^=]+)=([^:]+):(.+)$/.exec(arg);
    if (!m) throw new Error(`expected name=<checkout>:<addon .node file>, not "${arg}"`);
    return { name: m[1], tree: path.resolve(m[2]), addon: path.resolve(m[3]), runs: [] };
  });
  if (given.length < 2) throw new Error('give at least two sides: name=<checkout>:<addon .node file> …');
  return given;
}

async function main() {
  const list = sides();
  let server = null;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    server = await startFerretDB();
    uri = server.uri;
  }
  console.log(`${new Date().toISOString()} · ${PASSES} passes × ${list.map((s) => s.name).join(', ')} · ${ROUNDS} rounds each · addon CPU ms per 10 000 uploads`);
  for (let pass = 1; pass <= PASSES; pass++) {
    for (const side of list) {
      const load = os.loadavg()[0];
      const run = spawnSync(process.execPath, [path.join(side.tree, 'bench/main-thread.js'), '--json'], {
        cwd: side.tree,
        env: { ...process.env, MONGODB_URI: uri, MAIN_THREAD_ROUNDS: String(ROUNDS), ATOMIC_ASSET_VERSION_ADDON: side.addon },
        encoding: 'utf8',
      });
      if (run.status !== 0) throw new Error(`${side.name}: bench/main-thread.js failed:\n${run.stderr}`);
      const { addon, driver } = JSON.parse(run.stdout.trim().split('\n').pop());
      const rounds = addon.map((r) => r.cpuMs);
      const r = { addon: median(rounds), driver: median(driver.map((d) => d.cpuMs)) };
      side.runs.push(r);
      const at = new Date().toISOString().slice(11, 19);
      console.log(
        `  ${pass} ${side.name.padEnd(10)} ${at} load ${load.toFixed(1).padStart(4)}  rounds ${rounds.map((x) => x.toFixed(0).padStart(4)).join('')}  median ${r.addon.toFixed(1).padStart(6)}  driver ${r.driver.toFixed(1).padStart(6)}  ratio ${(r.addon / r.driver).toFixed(2)}`,
      );
    }
  }
  if (server) await server.stop();
  for (const side of list) {
    const of = (pick, digits) => {
      const xs = side.runs.map(pick);
      return `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)} to ${Math.max(...xs).toFixed(digits)})`;
    };
    console.log(`${side.name}: addon ${of((r) => r.addon, 1)} ms; driver ${of((r) => r.driver, 1)} ms; addon / driver ${of((r) => r.addon / r.driver, 2)}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
