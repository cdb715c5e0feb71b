'use strict';

// Helpers every suite uses: a fresh database per test file, the official
// driver to look at what the server actually holds, and set checks.
const { MongoClient } = require('mongodb');
const path = require('path');
const { AssetRepository } = require('../..');

const uri = () => process.env.MONGODB_URI;
let counter = 0;

function uniqueName(prefix) {
  counter += 1;
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter}`;
}

/** A database of its own for one test file; dropped by done(). */
async function testDatabase(file) {
  const dbName = uniqueName(`aav_${path.basename(file, '.test.js').replace(/\W/g, '_')}`).slice(0, 60);
  const client = await MongoClient.connect(uri(), { serverSelectionTimeoutMS: 10000 });
  const db = client.db(dbName);
  const repos = [];
  return {
    dbName,
    db,
    client,
    /** A repository on this database; closed by done(). */
    repository(options = {}) {
      const repo = new AssetRepository({ uri: uri(), dbName, ...options });
      repos.push(repo);
      return repo;
    },
    async done() {
      await Promise.allSettled(repos.map((r) => r.close()));
      await db.dropDatabase().catch(() => {});
      await client.close();
    },
  };
}

/** For what FerretDB v1 cannot do: runs on MongoDB, reported skipped (saying so) on FerretDB. */
const mongoOnly = process.env.AAV_SERVER_KIND === 'ferretdb' ? (name, ...rest) => test.skip(`${name} [MongoDB only: FerretDB v1 cannot]`, ...rest) : test;

/** Versions of an order as the database holds them, ascending. */
async function storedVersions(db, collection, orderId) {
  const docs = await db.collection(collection).find({ orderId }).sort({ version: 1 }).toArray();
  return docs;
}

function range(n, from = 1) {
  return Array.from({ length: n }, (_, i) => i + from);
}

/** Asserts the order holds exactly versions 1..n, labels matching. */
async function expectGapless(db, collection, orderId, n) {
  const docs = await storedVersions(db, collection, orderId);
  expect(docs.map((d) => d.version)).toEqual(range(n));
  for (const d of docs) expect(d.versionLabel).toBe(`v${d.version}`);
  return docs;
}

module.exports = { mongoOnly, testDatabase, storedVersions, expectGapless, range, uniqueName, uri };
