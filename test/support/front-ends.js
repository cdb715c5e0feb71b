'use strict';

// Several FerretDB front ends over the run's PostgreSQL (AAV_POSTGRESQL_URL),
// as several app servers would reach one database.
//
// A FerretDB v1 front end loads PostgreSQL's catalogue of databases and
// collections once, on first use, and never again: a database or collection
// another front end creates afterwards stays invisible to it (reads find
// nothing, writes fail with SQLSTATE 42P07; test/front-ends.test.js shows it).
// So the collections and their unique index are made first, through the
// run's own front end, and only then are the new front ends started.
const { MongoClient } = require('mongodb');
const { startFerretDB } = require('../../scripts/ferretdb');
const { uniqueName, uri } = require('./db');

/**
 * @param {number} n front ends to start
 * @param {string[]} collections made (with the unique (orderId, version) index) before they start
 * @returns {Promise<{ dbName: string, servers: object[], db: import('mongodb').Db, done(): Promise<void> }>}
 */
async function startFrontEnds(n, collections) {
  const dbName = uniqueName('aav_front_ends');
  const client = await MongoClient.connect(uri());
  const db = client.db(dbName);
  const servers = [];
  const done = async () => {
    await db.dropDatabase().catch(() => {});
    await client.close();
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    for (const name of collections) await db.collection(name).createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });
    for (let i = 0; i < n; i++) servers.push(await startFerretDB());
  } catch (err) {
    await done();
    throw err;
  }
  return { dbName, servers, db, done };
}

module.exports = { startFrontEnds };
