'use strict';

// End to end, the flat view against decoding: bench/main-thread.js's burst
// (10 000 uploads, 100 orders x 100, through createWithAtomicVersion) with
// the repository as it is, and with every stored document decoded from its
// bytes instead (BatchResults.document handed no view), alternating, ROUNDS
// each. Prints the main thread's CPU per upload, median and spread.
//
//   node bench/view-ab.js            (MONGODB_URI, else its own FerretDB)
const fs = require('fs');
const os = require('os');
const { AssetRepository } = require('..');
const { BatchResults } = require('../lib/batch_results');
const { startFerretDB } = require('../scripts/ferretdb');

const N = 10000;
const ROUNDS = Number(process.env.ROUNDS || 9);

const cpuMs = () => Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
const docs = (round) => Array.from({ length: N }, (_, i) => ({ orderId: `ab-${round}-${i % 100}`, fileName: `f-${i}.pdf`, mimeType: 'application/pdf', fileSize: 1024 + i }));

const document = BatchResults.prototype.document;
const variants = {
  view: () => (BatchResults.prototype.document = document),
  decode: () =>
    (BatchResults.prototype.document = function decodeOnly(i, view, fields) {
      return document.call(this, i, null, fields);
    }),
};

async function main() {
  let server = null;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    server = await startFerretDB();
    uri = server.uri;
  }
  const dbName = `aav_ab_${Date.now().toString(36)}`;
  const runs = { view: [], decode: [] };
  let serial = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ['view', 'decode'] : ['decode', 'view'];
    for (const name of order) {
      variants[name]();
      const repo = new AssetRepository({ uri, dbName, collection: `c${serial++}` });
      await repo.ensureIndex();
      const input = docs(serial);
      const t0 = cpuMs();
      const out = await Promise.all(input.map((d) => repo.createWithAtomicVersion(d)));
      const ms = cpuMs() - t0;
      await repo.close();
      if (out.length !== N || out[N - 1].version !== 100) throw new Error('unexpected result');
      runs[name].push((ms * 1000) / N);
    }
  }
  if (server) await server.stop();
  const stat = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return `${s[s.length >> 1].toFixed(2)} µs (min ${s[0].toFixed(2)}, max ${s[s.length - 1].toFixed(2)})`;
  };
  console.log(`${new Date().toISOString()} · ${os.cpus().length} CPUs · ${N} uploads, ${ROUNDS} rounds each, alternating; main-thread CPU per upload`);
  for (const name of Object.keys(runs)) console.log(`  ${name.padEnd(7)} ${stat(runs[name])}`);
  console.log(`  decode - view, per round: ${stat(runs.decode.map((d, i) => d - runs.view[i]))}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
