'use strict';

// What can be tested here of production topologies and observability: a
// server that calls itself a replica set with w: 'majority' writes, the URI's
// options, and Prometheus metrics scraped as text.
const promClient = require('prom-client');
const { AssetRepository } = require('..');
const { registerMetrics } = require('../lib/metrics');
const { startFerretDB } = require('../scripts/ferretdb');
const { ownFrontEnd } = require('./support/backend');
const { testDatabase, expectGapless, range, uri } = require('./support/db');

let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

test("a replica set (FerretDB with --repl-set-name) with w: 'majority' and j: true", async () => {
  const server = await startFerretDB({ ...ownFrontEnd('rs'), extraArgs: ['--repl-set-name=rs0'] });
  const repo = new AssetRepository({
    uri: `${server.uri}rsdb?replicaSet=rs0&readPreference=secondaryPreferred&serverSelectionTimeoutMS=5000`,
    collection: 'assets',
    writeConcern: { w: 'majority', j: true, wtimeoutMS: 5000 },
  });
  try {
    const assets = await Promise.all(range(30).map((i) => repo.createWithAtomicVersion({ orderId: 'rs', fileName: `f${i}` })));
    expect(assets.map((a) => a.version).sort((a, b) => a - b)).toEqual(range(30));
    expect(await repo.getNextVersion('rs')).toBe(31);
  } finally {
    await repo.close();
    await server.stop();
  }
});

test('a replicaSet name the server does not have: a clear ConnectionError', async () => {
  const repo = new AssetRepository({ uri: `${uri().replace(/\/$/, '')}/?replicaSet=nope&serverSelectionTimeoutMS=500`, dbName: t.dbName, collection: 'x' });
  await expect(repo.createWithAtomicVersion({ orderId: 'o', fileName: 'f' })).rejects.toMatchObject({ name: 'ConnectionError' });
  await repo.close();
});

test('an invalid writeConcern is refused by the server, not ignored', async () => {
  const repo = t.repository({ collection: 'wc', writeConcern: { w: 'no-such-tag-set' } });
  const err = await repo.createWithAtomicVersion({ orderId: 'o', fileName: 'f' }).then(
    () => null,
    (e) => e,
  );
  // MongoDB refuses the unknown tag set; FerretDB v1 ignores write concerns.
  if (process.env.AAV_SERVER_KIND === 'mongodb') expect(err).toMatchObject({ name: 'ServerError' });
  else expect(err).toBeNull();
});

test('Prometheus metrics on a prom-client registry, scraped as text', async () => {
  const registry = new promClient.Registry();
  const repo = t.repository({ collection: 'metrics' });
  const unregister = registerMetrics(repo, { registry, labels: { service: 'uploads' } });
  await Promise.all(range(12).map((i) => repo.createWithAtomicVersion({ orderId: 'm', fileName: `f${i}` })));
  await repo.createWithAtomicVersion({ orderId: 'm' }).catch(() => {});
  const text = await registry.metrics();
  expect(text).toMatch(/^asset_version_uploads_total\{service="uploads"\} 12$/m);
  expect(text).toMatch(/^asset_version_uploads_succeeded_total\{service="uploads"\} 12$/m);
  expect(text).toMatch(/^asset_version_validation_errors_total\{service="uploads"\} 1$/m);
  expect(text).toMatch(/^asset_version_retries_total\{service="uploads"\} 0$/m);
  expect(text).toMatch(/^asset_version_upload_duration_seconds_count\{service="uploads",outcome="stored"\} 12$/m);
  expect(text).toMatch(/# TYPE asset_version_upload_duration_seconds histogram/);
  unregister();
  expect(await registry.metrics()).not.toMatch(/asset_version_/);
  await expectGapless(t.db, 'metrics', 'm', 12);
});
