'use strict';

// FerretDB over PostgreSQL: every versioned collection gets an index that
// serves the read of one order (scripts/order-index.sql), whoever creates the
// collection, and the addon's reads of a batch's tops go through it
// (src/core/read_tops.c). Asserted on PostgreSQL's own catalogue, plans and
// index counters, not on timings.
const { execFileSync } = require('child_process');
const path = require('path');
const { testDatabase, range } = require('./support/db');
const { describeOnPostgres } = require('./support/backend');

function sql(query) {
  const { binDir } = require('../scripts/postgres');
  const u = new URL(process.env.AAV_POSTGRESQL_URL);
  return execFileSync(path.join(binDir(), 'psql'), ['-h', u.hostname, '-p', u.port, '-U', 'postgres', '-d', u.pathname.slice(1), '-tA', '-v', 'ON_ERROR_STOP=1', '-c', query], {
    encoding: 'utf8',
  }).trim();
}

let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

/** FerretDB's table for a collection (its names are hashed). */
const tableOf = (collection) => sql(`SELECT _jsonb->>'table' FROM "${t.dbName}"._ferretdb_database_metadata WHERE _jsonb->>'_id' = '${collection}'`);
const indexesOf = (collection) => sql(`SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = '${t.dbName}' AND tablename = '${tableOf(collection)}'`).split('\n');
const orderIndexOf = (collection) => indexesOf(collection).filter((i) => /USING gin \(\(\(_jsonb -> 'orderId'::text\)\) jsonb_path_ops\)/.test(i));
const orderIndexScans = (collection) =>
  Number(
    sql(`SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes WHERE schemaname = '${t.dbName}' AND relname = '${tableOf(collection)}' AND indexrelname LIKE '%_order_gin'`),
  );

/** PostgreSQL publishes a backend's counters when it goes idle, up to seconds later. */
async function scansReach(collection, atLeast) {
  const until = Date.now() + 20000;
  let scans = orderIndexScans(collection);
  while (scans < atLeast && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    scans = orderIndexScans(collection);
  }
  return scans;
}

const assets = (n, orders) => range(n, 0).map((i) => ({ orderId: `o-${i % orders}`, version: Math.floor(i / orders) + 1, fileName: `f${i}` }));

describeOnPostgres('the order index on FerretDB over PostgreSQL', () => {
  test("a collection a plain driver client makes gets it with its unique index, and FerretDB's read of one order is planned on it", async () => {
    const coll = t.db.collection('by_driver');
    await coll.createIndex({ orderId: 1, version: 1 }, { unique: true });
    await coll.createIndex({ fileName: 1 }); // not unique: nothing added
    await coll.insertMany(assets(3000, 300));
    expect(orderIndexOf('by_driver')).toHaveLength(1);
    expect(indexesOf('by_driver').filter((i) => /USING gin/.test(i))).toHaveLength(1);
    sql(`ANALYZE "${t.dbName}"."${tableOf('by_driver')}"`);
    const explained = await t.db.command({ explain: { find: 'by_driver', filter: { orderId: 'o-7' } }, verbosity: 'queryPlanner' });
    expect(explained.filterPushdown).toBe(true);
    const plan = JSON.stringify(explained.queryPlanner);
    expect(plan).toContain('_order_gin');
    expect(plan).not.toContain('Seq Scan');
  });

  test("the addon's ensureIndex gets it too, and a batch of many orders reads each order's top through it", async () => {
    const repo = t.repository({ collection: 'by_addon' });
    await repo.ensureIndex();
    expect(orderIndexOf('by_addon')).toHaveLength(1);
    await t.db.collection('by_addon').insertMany(assets(3000, 300).map((a) => ({ ...a, versionLabel: `v${a.version}` })));
    const before = await scansReach('by_addon', 0);
    // 200 orders at once: batches of many orders (on this server the grouped
    // read is refused, and the one find of them all would scan the table).
    const stored = await Promise.all(range(200, 0).map((o) => repo.createWithAtomicVersion({ orderId: `o-${o}`, fileName: `new-${o}` })));
    expect(stored.map((a) => a.version)).toEqual(range(200, 0).map((o) => (o < 300 ? 11 : 1)));
    expect(repo.stats().batches).toBeLessThan(200);
    // One probe per order's read: 200 at least (none if the reads scanned).
    expect((await scansReach('by_addon', before + 200)) - before).toBeGreaterThanOrEqual(200);
  });

  test('an index made after the table has data and its reads have been planned still serves the next reads (force_custom_plan)', async () => {
    const coll = t.db.collection('late_index');
    await coll.insertMany(assets(3000, 300));
    sql(`ANALYZE "${t.dbName}"."${tableOf('late_index')}"`);
    // Planned while no index exists: PostgreSQL settles on a generic plan
    // after five, which would keep scanning once the index is there.
    for (let i = 0; i < 20; i++) await coll.find({ orderId: 'o-1' }).toArray();
    await coll.createIndex({ orderId: 1, version: 1 }, { unique: true });
    expect(orderIndexOf('late_index')).toHaveLength(1);
    const before = await scansReach('late_index', 0);
    for (let i = 0; i < 20; i++) expect(await coll.find({ orderId: 'o-1' }).toArray()).toHaveLength(10);
    expect((await scansReach('late_index', before + 20)) - before).toBeGreaterThanOrEqual(20);
  });
});
