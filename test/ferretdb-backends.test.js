'use strict';

// What FerretDB v1.24.2 does differently on its two backends, SQLite and
// PostgreSQL, where it matters to this package. Each expectation names the
// backend it holds for; docs/ferretdb.md lists the same. Runs on
// whichever backend this run started (`npm test`: PostgreSQL, `npm run test:sqlite`).
const { testDatabase, range } = require('./support/db');
const { backend, describeOnFerretDB } = require('./support/backend');

const onPostgres = backend === 'postgresql';

describeOnFerretDB(`FerretDB v1 on ${backend || 'its backends'}`, () => {
  let t;
  beforeAll(async () => {
    t = await testDatabase(__filename);
  });
  afterAll(() => t && t.done());

  const versionIndex = (col) => col.createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });

  test('an ordered insertMany is ordered only within 100 documents: each chunk stops at its first error, the next goes on (both backends)', async () => {
    const col = t.db.collection('ordered');
    await versionIndex(col);
    await col.insertMany([
      { orderId: 'o', version: 51 },
      { orderId: 'o', version: 151 },
    ]);
    const err = await col
      .insertMany(
        range(250).map((version) => ({ orderId: 'o', version })),
        { ordered: true },
      )
      .then(
        () => null,
        (e) => e,
      );
    expect(err.writeErrors.map((w) => [w.index, w.code])).toEqual([
      [50, 11000],
      [150, 11000],
    ]);
    const stored = (await col.find({ orderId: 'o' }).toArray()).map((d) => d.version).sort((a, b) => a - b);
    // MongoDB would stop at index 50 and store 1..50 only.
    expect(stored).toEqual([...range(50), 51, ...range(50, 101), 151, ...range(50, 201)]);
  });

  test('a duplicate-key error names neither the index nor the key (both backends)', async () => {
    const col = t.db.collection('dupshape');
    await versionIndex(col);
    await col.insertOne({ orderId: 'o', version: 1 });
    const err = await col.insertOne({ orderId: 'o', version: 1 }).then(
      () => null,
      (e) => e,
    );
    expect(err.code).toBe(11000);
    expect(err.message).not.toMatch(/orderId_1_version_1|index:|dup key/);
    expect(err.keyPattern).toBeUndefined();
    expect(err.keyValue).toBeUndefined();
  });

  test('indexes keep their MongoDB names; a same-named non-unique createIndex is answered "ok" (both backends)', async () => {
    const col = t.db.collection('indexes');
    await versionIndex(col);
    await expect(col.createIndex({ orderId: 1, version: 1 }, { name: 'orderId_1_version_1' })).resolves.toBe('orderId_1_version_1');
    await expect(col.createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'other' })).rejects.toMatchObject({ code: 85 });
    const indexes = await col.listIndexes().toArray();
    expect(indexes.map((i) => [i.name, i.unique === true])).toEqual([
      ['_id_', false],
      ['orderId_1_version_1', true],
    ]);
  });

  test(`"highest version of an order": the filter is pushed down ${onPostgres ? 'to PostgreSQL' : 'only for _id on SQLite'}; sort and limit on neither`, async () => {
    const col = t.db.collection('pushdown');
    await versionIndex(col);
    await col.insertMany(range(200).map((i) => ({ orderId: `o${i % 10}`, version: Math.ceil(i / 10) + 1 })));
    const highest = await col.find({ orderId: 'o1' }).sort({ version: -1 }).limit(1).explain();
    expect([highest.filterPushdown, highest.sortPushdown, highest.limitPushdown]).toEqual([onPostgres, false, false]);
    const above = await col
      .find({ orderId: 'o1', version: { $gte: 5 } })
      .limit(1)
      .explain();
    expect(above.filterPushdown).toBe(onPostgres);
    const byId = await col.find({ _id: (await col.findOne())._id }).explain();
    expect(byId.filterPushdown).toBe(true);
    if (onPostgres) {
      // Pushed down as JSONB containment, which the (orderId, version)
      // b-tree cannot serve, but the GIN index scripts/order-index.sql adds
      // beside it does (docs/scale.md).
      expect(JSON.stringify(highest.queryPlanner)).toMatch(/"Index Name":"[^"]*_order_gin"/);
      expect(JSON.stringify(highest.queryPlanner)).not.toMatch(/Seq Scan/);
      expect(JSON.stringify(highest.queryPlanner)).toMatch(/-> 'orderId'::text\) @>/);
    }
  });

  test(`a NUL byte inside a string is ${onPostgres ? 'refused by PostgreSQL (jsonb cannot hold U+0000): that upload fails as not stored, the order stays gapless' : 'stored by SQLite'}`, async () => {
    const repo = t.repository({ collection: 'nul' });
    const results = await Promise.allSettled([
      repo.createWithAtomicVersion({ orderId: 'nul', fileName: 'a.pdf' }),
      repo.createWithAtomicVersion({ orderId: 'nul', fileName: 'b.pdf', note: 'a\u0000b' }),
      repo.createWithAtomicVersion({ orderId: 'nul', fileName: 'c.pdf' }),
    ]);
    const docs = await t.db.collection('nul').find({ orderId: 'nul' }).sort({ version: 1 }).toArray();
    expect(docs.map((d) => d.version)).toEqual(range(docs.length));
    const byName = new Map(docs.map((d) => [d.fileName, d]));
    if (!onPostgres) {
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      expect(byName.get('b.pdf').note).toBe('a\u0000b');
      return;
    }
    expect(results[1].reason).toMatchObject({ name: 'ServerError', code: 1 });
    expect(results[1].reason.message).toMatch(/unsupported Unicode escape sequence \(SQLSTATE 22P05\)/);
    expect(byName.has('b.pdf')).toBe(false);
    // Its neighbours: stored under the version they resolved with, or failed
    // and not stored. (Today an upload coalesced after it in the same insert
    // fails too, with its error: FerretDB answers code 1 for any backend
    // error, so nothing says the rest of the batch was fine.)
    for (const [i, name] of [
      [0, 'a.pdf'],
      [2, 'c.pdf'],
    ]) {
      if (results[i].status === 'fulfilled') expect(byName.get(name)).toMatchObject({ version: results[i].value.version });
      else expect([results[i].reason.name, byName.has(name)]).toEqual(['ServerError', false]);
    }
    const next = await repo.createWithAtomicVersion({ orderId: 'nul', fileName: 'd.pdf' });
    expect(next.version).toBe(docs.length + 1);
  });
});
