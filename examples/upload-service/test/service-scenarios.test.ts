// The reference design's seven scenarios, run on the example's model with
// both repositories: the reference design's Mongoose repository and this
// package in model mode. Each scenario is checked against the database, and
// what each repository gave is compared deep-equal at the end.
import mongoose from 'mongoose';
import { testDatabase, expectGapless, storedVersions, range, uri } from '../../../test/support/db';
import { makeRepository, idOf, RepositoryKind } from './support/service';
import type { Asset, AssetRepositoryPort } from '../src/asset-repository';

const kinds: RepositoryKind[] = ['mongoose', 'addon'];
const outcomes: Record<RepositoryKind, Record<string, unknown>> = { mongoose: {}, addon: {} };

const data = (order: string, i: number, extra: Record<string, unknown> = {}) => ({
  orderId: idOf(order),
  uploadedBy: idOf('alice'),
  fileName: `file-${i}.pdf`,
  fileUrl: `/files/${order}-${i}`,
  mimeType: 'application/pdf',
  fileSize: 1000 + i,
  storageKey: `${order}-${i}`,
  ...extra,
});
/** A stored or resolved asset without what differs by nature: _id and timestamps. */
const plain = ({ _id, createdAt, updatedAt, ...rest }: any) => ({ ...rest, orderId: String(rest.orderId), uploadedBy: String(rest.uploadedBy) });
const byVersion = (a: { version: number }, b: { version: number }) => a.version - b.version;
// What a scenario records when the reference design gave up on an upload.
const GAVE_UP = 'the reference design exhausted its retries';

describe.each(kinds)('the seven scenarios with the %s repository', (kind) => {
  let t: any;
  const opened: AssetRepositoryPort[] = [];
  const repository = async (collection: string) => {
    const repo = await makeRepository(kind, uri() as string, t.dbName, collection, { coalesce: false });
    opened.push(repo);
    return repo;
  };
  let gaveUp = 0;
  /**
   * Every upload's asset. The reference design gives up after 5 retries of
   * 5-15 ms, and on FerretDB, whose "highest version" read scans the
   * collection, a few concurrent uploads can exhaust them: such a failure
   * must be its duplicate-key error, with nothing stored, and the scenario
   * then counts the uploads that were stored. This package loses none.
   */
  const all = async (uploads: Array<Promise<Asset>>): Promise<Asset[]> => {
    const results = await Promise.allSettled(uploads);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
    if (kind === 'addon') expect(failed).toEqual([]);
    for (const err of failed) expect(err.code).toBe(11000);
    gaveUp += failed.length;
    return results.filter((r): r is PromiseFulfilledResult<Asset> => r.status === 'fulfilled').map((r) => r.value);
  };
  /** What the database holds for an order, as the comparison needs it. */
  const stored = async (collection: string, order: string): Promise<any[]> => (await storedVersions(t.db, collection, idOf(order))).map(plain);

  beforeAll(async () => {
    t = await testDatabase(`${__filename}_${kind}`);
  });
  afterAll(async () => {
    if (gaveUp > 0) console.log(`the reference design exhausted its retries on ${gaveUp} uploads of the seven scenarios`);
    for (const repo of opened) await repo.close();
    await t.done();
  });
  /** Records a scenario's outcome, unless the reference design gave up on one of its uploads. */
  const record = (n: number, before: number, outcome: () => unknown) => {
    outcomes[kind][n] = gaveUp > before ? GAVE_UP : outcome();
  };

  test('1. three concurrent uploads to one order get versions 1, 2, 3 and no duplicates', async () => {
    const repo = await repository('s1');
    const before = gaveUp;
    const assets = await all(range(3).map((i) => repo.createWithAtomicVersion(data('order-1', i))));
    expect(assets.map((a) => a.version).sort()).toEqual(range(assets.length));
    await expectGapless(t.db, 's1', idOf('order-1'), assets.length);
    record(1, before, () => ({
      resolved: assets
        .map(plain)
        .sort(byVersion)
        .map(({ version, versionLabel, status, extension }) => ({ version, versionLabel, status, extension })),
    }));
  });

  test('2. sequential uploads after a concurrent burst continue the sequence', async () => {
    const repo = await repository('s2');
    const before = gaveUp;
    const burst = (await all(range(3).map((i) => repo.createWithAtomicVersion(data('order-2', i))))).length;
    const fourth = await repo.createWithAtomicVersion(data('order-2', 4));
    const fifth = await repo.createWithAtomicVersion(data('order-2', 5));
    expect([fourth.version, fifth.version]).toEqual([burst + 1, burst + 2]);
    const docs = await expectGapless(t.db, 's2', idOf('order-2'), burst + 2);
    expect(docs.slice(burst).map((d: Asset) => d.fileName)).toEqual(['file-4.pdf', 'file-5.pdf']);
    const held = (await stored('s2', 'order-2')).slice(burst);
    record(2, before, () => ({ resolved: [fourth, fifth].map(plain), stored: held }));
  });

  test('3. ten concurrent uploads get exactly 1..10', async () => {
    const repo = await repository('s3');
    const before = gaveUp;
    const assets = await all(range(10).map((i) => repo.createWithAtomicVersion(data('order-3', i))));
    await expectGapless(t.db, 's3', idOf('order-3'), assets.length);
    const labels = (await stored('s3', 'order-3')).map((d) => d.versionLabel);
    record(3, before, () => labels);
  });

  test('4. concurrent uploads to different orders keep independent sequences', async () => {
    const repo = await repository('s4');
    const before = gaveUp;
    const orders = ['order-a', 'order-b', 'order-c'];
    const assets = await all(orders.flatMap((o) => range(4).map((i) => repo.createWithAtomicVersion(data(o, i)))));
    for (const o of orders) await expectGapless(t.db, 's4', idOf(o), assets.filter((a) => a.orderId.equals(idOf(o))).length);
    const held = await Promise.all(orders.map(async (o) => (await stored('s4', o)).map((d) => [d.orderId, d.version])));
    record(4, before, () => held);
  });

  test('5. a version written by another client in between is retried, and every upload stored', async () => {
    const a = await repository('s5');
    const b = await repository('s5');
    const before = gaveUp;
    const results = await all(range(4).flatMap((i) => [a.createWithAtomicVersion(data('order-5', i)), b.createWithAtomicVersion(data('order-5', 100 + i))]));
    expect(results.map((r) => r.version).sort((x, y) => x - y)).toEqual(range(results.length));
    await expectGapless(t.db, 's5', idOf('order-5'), results.length);
    const labels = (await stored('s5', 'order-5')).map((d) => d.versionLabel);
    record(5, before, () => labels);
  });

  test('6. a validation error leaves no partial data', async () => {
    const repo = await repository('s6');
    await repo.createWithAtomicVersion(data('order-6', 1));
    // Each rejection is caught as it happens, not when the loop reaches it.
    const bad = [
      repo.createWithAtomicVersion(data('order-6', 7, { fileUrl: undefined })),
      repo.createWithAtomicVersion(data('order-6', 8, { status: 'lost' })),
      repo.createWithAtomicVersion(data('order-6', 9, { fileSize: -1, mimeType: '' })),
    ].map((p) => p.catch((e) => e));
    const good = repo.createWithAtomicVersion(data('order-6', 2));
    const errors = [];
    for (const p of bad) {
      const err = await p;
      expect(err).toBeInstanceOf(mongoose.Error.ValidationError);
      errors.push(Object.keys(err.errors).sort());
    }
    await good;
    const docs = await expectGapless(t.db, 's6', idOf('order-6'), 2);
    expect(docs.map((d: Asset) => d.fileName)).toEqual(['file-1.pdf', 'file-2.pdf']);
    expect(await t.db.collection('s6').countDocuments()).toBe(2);
    outcomes[kind][6] = { errors, stored: await stored('s6', 'order-6') };
  });

  test('7. version labels match version numbers for concurrent uploads', async () => {
    const repo = await repository('s7');
    const before = gaveUp;
    const assets = await all(range(8).map((i) => repo.createWithAtomicVersion(data('order-7', i))));
    for (const a of assets) expect(a.versionLabel).toBe(`v${a.version}`);
    const docs = await stored('s7', 'order-7');
    expect(docs.map((d) => d.versionLabel)).toEqual(range(assets.length).map((v) => `v${v}`));
    record(7, before, () => docs.map((d) => [d.version, d.versionLabel]));
  });
});

test('both repositories gave deep-equal outcomes in every scenario', () => {
  expect(Object.keys(outcomes.addon)).toEqual(['1', '2', '3', '4', '5', '6', '7']);
  // Where the reference design gave up, there is nothing of it to compare;
  // scenario 6 (validation, one upload at a time) it never gives up on.
  const compared = Object.keys(outcomes.mongoose).filter((n) => outcomes.mongoose[n] !== GAVE_UP);
  expect(compared).toContain('6');
  for (const n of compared) expect([n, outcomes.addon[n]]).toEqual([n, outcomes.mongoose[n]]);
  for (const n of Object.keys(outcomes.addon)) expect(outcomes.addon[n]).not.toBe(GAVE_UP);
  expect(outcomes.addon[6]).toMatchObject({ errors: [['fileUrl'], ['status'], ['fileSize', 'mimeType']] });
});
